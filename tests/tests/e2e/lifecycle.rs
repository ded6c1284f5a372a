//! A session's lifecycle end to end: renew, status and the paginated list, destroy, expiry
//! through the TTL sweeper and the stream-driven cleanup, and the orphan sweep of `/cleanup`.
//! Nothing a session created outlives it.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use serde_json::Value;
use sqs_push_core::crypto::{SessionCipher, SessionKey};
use sqs_push_core::model::ids::{AccountId, SessionId, UserId};
use sqs_push_core::model::session::{Credentials as SessionCredentials, Session};
use sqs_push_core::ports::QueueSpec;
use sqs_push_core::session::queue_name::QueueNameGenerator;
use sqs_push_local::LocalStack;
use sqs_push_tests::*;

/// The admin clients a test inspects the emulator with.
struct Admin {
    sqs: aws_sdk_sqs::Client,
    cognito: aws_sdk_cognitoidentity::Client,
    dynamodb: aws_sdk_dynamodb::Client,
}

impl Admin {
    async fn new(emulator: &Emulator) -> Self {
        let config = admin_config(emulator).await;
        Self {
            sqs: aws_sdk_sqs::Client::new(&config),
            cognito: aws_sdk_cognitoidentity::Client::new(&config),
            dynamodb: aws_sdk_dynamodb::Client::new(&config),
        }
    }

    async fn queue_exists(&self, name: &str) -> bool {
        match self.sqs.get_queue_url().queue_name(name).send().await {
            Ok(_) => true,
            Err(error) => {
                let error = error.into_service_error();
                assert!(error.is_queue_does_not_exist(), "GetQueueUrl: {error:?}");
                false
            }
        }
    }

    async fn identity_exists(&self, identity_id: &str) -> bool {
        match self
            .cognito
            .describe_identity()
            .identity_id(identity_id)
            .send()
            .await
        {
            Ok(_) => true,
            Err(error) => {
                let error = error.into_service_error();
                assert!(
                    error.is_resource_not_found_exception(),
                    "DescribeIdentity: {error:?}"
                );
                false
            }
        }
    }

    async fn row_exists(&self, stack: &LocalStack, user_id: u64, session_id: &str) -> bool {
        use aws_sdk_dynamodb::types::AttributeValue;
        self.dynamodb
            .get_item()
            .table_name(stack.config.sessions_table())
            .key("userId", AttributeValue::N(user_id.to_string()))
            .key("sessionId", AttributeValue::S(session_id.to_string()))
            .consistent_read(true)
            .send()
            .await
            .expect("GetItem works")
            .item()
            .is_some()
    }

    async fn create_queue(&self, name: &str) {
        self.sqs
            .create_queue()
            .queue_name(name)
            .send()
            .await
            .expect("CreateQueue works");
    }
}

async fn create(stack: &LocalStack, path: &str) -> Value {
    let (status, created) = get(stack, path).await;
    assert_eq!(status, 200, "{path}: {created}");
    created["session"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_session_disappears_then_its_queue_and_identity_are_gone() {
    let stack = Stack::builder()
        .configure(|options| {
            options.stack.credential_seconds = 2;
            options.stack.idle_seconds = 1;
            options.sweep_interval = Duration::from_millis(250);
            options.stream_poll_interval = Duration::from_millis(100);
        })
        .start()
        .await;
    let emulator = &stack.emulator;
    let admin = &Admin::new(emulator).await;
    let stack = &stack;
    let session_id = &unique_session_id("short");
    let session = create(stack, &format!("/create/100/400/{session_id}")).await;
    let (queue, identity) = (text(&session, "sqsQueueName"), text(&session, "identityId"));
    assert_eq!(
        session["ttl"].as_u64().unwrap(),
        session["expires"].as_u64().unwrap() + 1,
        "ttl is credential expiry plus the idle period"
    );
    assert!(admin.queue_exists(queue).await);
    assert!(admin.identity_exists(identity).await);

    let limit = Duration::from_secs(20);
    eventually(limit, "the expired row's removal", move || async move {
        !admin.row_exists(stack, 400, session_id).await
    })
    .await;
    eventually(limit, "the queue's deletion", move || async move {
        !admin.queue_exists(queue).await
    })
    .await;
    eventually(limit, "the identity's deletion", move || async move {
        !admin.identity_exists(identity).await
    })
    .await;
    let (status, answer) = get(stack, &format!("/status/100/400/{session_id}")).await;
    assert_eq!(status, 404, "{answer}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn destroy_removes_the_session_and_its_queue_then_its_identity_and_a_second_destroy_is_not_found()
 {
    let stack = &Stack::builder()
        .configure(|options| {
            options.stream_poll_interval = Duration::from_millis(100);
        })
        .start()
        .await;
    let emulator = &stack.emulator;
    let admin = &Admin::new(emulator).await;
    let session_id = unique_session_id("tab");
    let session = create(stack, &format!("/create/100/401/{session_id}")).await;
    let (queue, identity) = (text(&session, "sqsQueueName"), text(&session, "identityId"));

    let (status, answer) = get(stack, &format!("/destroy/101/401/{session_id}")).await;
    assert_eq!(
        status, 404,
        "another account's destroy finds nothing: {answer}"
    );
    assert!(admin.queue_exists(queue).await);

    let (status, answer) = get(stack, &format!("/destroy/100/401/{session_id}")).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["success"], true);
    assert!(!admin.row_exists(stack, 401, &session_id).await);
    assert!(
        !admin.queue_exists(queue).await,
        "destroy deletes the queue itself"
    );
    eventually(
        Duration::from_secs(20),
        "the identity's deletion through the stream",
        move || async move { !admin.identity_exists(identity).await },
    )
    .await;

    let (status, answer) = get(stack, &format!("/destroy/100/401/{session_id}")).await;
    assert_eq!(status, 404, "{answer}");
    assert_eq!(answer["success"], false);
    assert_eq!(
        answer["error"],
        format!("session {session_id} of user 401 not found")
    );
    let (status, _) = get(stack, &format!("/status/100/401/{session_id}")).await;
    assert_eq!(status, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn renew_gives_new_credentials_that_receive_from_the_same_queue() {
    let stack = &Stack::start().await;
    let emulator = &stack.emulator;
    let session_id = unique_session_id("renew");
    let path = format!("/100/402/{session_id}");
    let created = create(stack, &format!("/create{path}")).await;

    let (status, answer) = get(stack, &format!("/renew{path}")).await;
    assert_eq!(status, 200, "{answer}");
    let renewed = &answer["session"];
    for same in [
        "sqsUrl",
        "sqsQueueName",
        "aesKey",
        "identityId",
        "sessionId",
        "userId",
        "accountId",
    ] {
        assert_eq!(renewed[same], created[same], "{same}");
    }
    assert_ne!(renewed["accessKey"], created["accessKey"]);
    assert_ne!(renewed["sessionToken"], created["sessionToken"]);
    let expires = renewed["expires"].as_u64().unwrap();
    assert!(expires >= created["expires"].as_u64().unwrap());
    assert_eq!(renewed["ttl"].as_u64().unwrap(), expires + 3600);
    let (_, status_answer) = get(stack, &format!("/status{path}")).await;
    assert_eq!(
        &without_presence(&status_answer["session"]),
        renewed,
        "the row holds the renewed session"
    );

    // The browser's side, with the renewed credentials only.
    let browser = session_sqs_client(emulator, renewed).await;
    let poll = long_poll(&browser, renewed);
    let (status, notified) = get(
        stack,
        &format!("/notify/user/402/session/{session_id}?message=renewed"),
    )
    .await;
    assert_eq!(status, 200, "{notified}");
    let received = poll
        .await
        .unwrap()
        .expect("receive works with the renewed credentials");
    let message = &received.messages()[0];
    let mac = message
        .message_attributes()
        .and_then(|attributes| attributes.get("mac"))
        .and_then(|attribute| attribute.string_value());
    let key = SessionKey::from_base64(text(renewed, "aesKey")).unwrap();
    let plaintext = SessionCipher::new(&key)
        .open(message.body().unwrap(), mac)
        .expect("the message decrypts with the unchanged key");
    let message: Value = serde_json::from_slice(&plaintext).unwrap();
    assert_eq!(message["message"], "renewed");

    let (status, answer) = get(stack, "/renew/100/402/no-such-session").await;
    assert_eq!(status, 404, "{answer}");
    assert_eq!(
        answer["error"],
        "session no-such-session of user 402 not found"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_returns_the_session_as_created_and_the_list_pages_without_secrets() {
    let stack = &Stack::start().await;
    let mut created = Vec::new();
    for (user, session) in [(403, "a"), (403, "b"), (403, "c"), (404, "a"), (405, "z")] {
        created.push(create(stack, &format!("/create/100/{user}/{session}")).await);
    }

    let (status, answer) = get(stack, "/status/100/403/b").await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        answer["session"]["online"], false,
        "no heartbeat yet: {answer}"
    );
    assert_eq!(answer["session"]["lastSeen"], Value::Null, "{answer}");
    assert_eq!(
        without_presence(&answer["session"]),
        created[1],
        "status answers as create did, with presence"
    );
    let (status, _) = get(stack, "/status/101/403/b").await;
    assert_eq!(status, 404, "another account's status finds nothing");

    let mut seen = Vec::new();
    let mut path = "/status?limit=2".to_string();
    let mut pages = 0;
    loop {
        let (status, page) = get(stack, &path).await;
        assert_eq!(status, 200, "{path}: {page}");
        pages += 1;
        let sessions = page["sessions"].as_array().expect("sessions is a list");
        assert!(sessions.len() <= 2, "{page}");
        for listed in sessions {
            for secret in [
                "aesKey",
                "accessKey",
                "secretKey",
                "sessionToken",
                "sqsUrl",
                "identityId",
            ] {
                assert!(
                    listed.get(secret).is_none(),
                    "{secret} in the list: {listed}"
                );
            }
            seen.push(format!(
                "{}/{}",
                listed["userId"],
                text(listed, "sessionId")
            ));
            let original = created
                .iter()
                .find(|c| c["sqsQueueName"] == listed["sqsQueueName"])
                .expect("a listed session is one we created");
            for field in ["accountId", "expires", "ttl"] {
                assert_eq!(listed[field], original[field], "{field}");
            }
        }
        match page["next"].as_str() {
            Some(next) => path = format!("/status?limit=2&next={next}"),
            None => break,
        }
    }
    seen.sort();
    assert_eq!(seen, ["403/a", "403/b", "403/c", "404/a", "405/z"]);
    assert!(
        pages >= 3,
        "five sessions two at a time take three pages, not {pages}"
    );

    let (_, everything) = get(stack, "/status").await;
    assert_eq!(everything["sessions"].as_array().unwrap().len(), 5);
    assert!(everything.get("next").is_none(), "{everything}");

    for (path, field) in [
        ("/status?limit=0", "limit"),
        ("/status?limit=1001", "limit"),
        ("/status?limit=some", "limit"),
        ("/status?next=not-a-token", "next"),
    ] {
        let (status, answer) = get(stack, path).await;
        assert_eq!(status, 400, "{path}: {answer}");
        assert!(text(&answer, "error").contains(field), "{path}: {answer}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cleanup_removes_an_orphan_queue_and_keeps_live_and_young_ones() {
    let stack = &Stack::builder()
        .configure(|options| options.stack.orphan_grace_seconds = 2)
        .start()
        .await;
    let emulator = &stack.emulator;
    let admin = Admin::new(emulator).await;
    let names = QueueNameGenerator::new("sqs-push-local").unwrap();

    let live = create(stack, "/create/100/406/live").await;
    let old_orphan = names.generate();
    admin.create_queue(&old_orphan).await;
    let other_stage = QueueNameGenerator::new("sqs-push-other")
        .unwrap()
        .generate();
    admin.create_queue(&other_stage).await;
    admin.create_queue("sqs-push-local_handmade").await;
    tokio::time::sleep(Duration::from_millis(3100)).await;
    let young_orphan = names.generate();
    admin.create_queue(&young_orphan).await;

    let (status, answer) = get(stack, "/cleanup").await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["success"], true);
    assert_eq!(answer["queuesScanned"], 3, "{answer}");
    assert_eq!(answer["orphansFound"], 2, "{answer}");
    assert_eq!(answer["deleted"], 1, "{answer}");
    assert_eq!(answer["skippedYoung"], 1, "{answer}");
    assert_eq!(answer["failed"], 0, "{answer}");

    assert!(
        !admin.queue_exists(&old_orphan).await,
        "the old orphan is gone"
    );
    assert!(
        admin.queue_exists(&young_orphan).await,
        "the young orphan stays"
    );
    assert!(
        admin.queue_exists(text(&live, "sqsQueueName")).await,
        "the live queue stays"
    );
    assert!(
        admin.queue_exists(&other_stage).await,
        "another stage's queue stays"
    );
    assert!(
        admin.queue_exists("sqs-push-local_handmade").await,
        "a name we never make stays"
    );
}

/// An upgrade with `legacyQueueNames` (docs/operations.md, "Upgrading"): `/cleanup` also sweeps
/// the stage's queues of the old shape, `<prefix>-` and exactly 43 characters, and nothing of a
/// stage whose name starts with ours.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_legacy_queue_names_cleanup_removes_old_named_orphans_and_nothing_of_another_stage() {
    let stack = &Stack::builder()
        .configure(|options| {
            options.stack.orphan_grace_seconds = 0;
            options.stack.legacy_queue_names = true;
        })
        .start()
        .await;
    let admin = Admin::new(&stack.emulator).await;
    let random = "C".repeat(43);
    let old_orphan = format!("sqs-push-local-{random}");
    admin.create_queue(&old_orphan).await;
    let kept = [
        format!("sqs-push-local-eu-{random}"),
        format!("sqs-push-local-eu_{random}"),
        "sqs-push-local-upstream".to_string(),
    ];
    for name in &kept {
        admin.create_queue(name).await;
    }
    let live = create(stack, "/create/100/407/live").await;

    let (status, answer) = get(stack, "/cleanup").await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        answer["queuesScanned"], 2,
        "the live queue and the old orphan: {answer}"
    );
    assert_eq!(answer["deleted"], 1, "{answer}");
    assert!(
        !admin.queue_exists(&old_orphan).await,
        "the old-named orphan is gone"
    );
    assert!(admin.queue_exists(text(&live, "sqsQueueName")).await);
    for name in &kept {
        assert!(admin.queue_exists(name).await, "{name} stays");
    }
}

/// 1,000 sessions are written straight through the adapters (an HTTP create each would mostly
/// time STS), already expired; one sweep removes them all at once, as the TTL would. The emulator
/// refuses DeleteIdentities calls of more than 60 ids, so every identity gone means they went in
/// batches; the exact split (60, 60, …) is pinned by the unit tests in `sqs_push_core::cleanup`.
/// It prints its timings; about 20–30 s on two shared cores, most of it writing the sessions.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_sessions_expiring_at_once_are_all_cleaned_with_identities_deleted_in_batches() {
    const SESSIONS: usize = 1000;
    let stack = Stack::builder()
        .configure(|options| {
            // Only this test's own sweep runs, so all of them expire in one pass.
            options.sweep_interval = Duration::from_secs(3600);
            options.stream_poll_interval = Duration::from_millis(100);
        })
        .start()
        .await;
    let emulator = &stack.emulator;
    let admin = Admin::new(emulator).await;
    let adapters = Arc::new(sqs_push_functions::wiring::Adapters::aws(&stack.config).await);
    let names = stack.config.queue_names().unwrap();
    let started = Instant::now();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();

    let sessions: Vec<Session> = futures::stream::iter(0..SESSIONS)
        .map(|number| {
            let adapters = adapters.clone();
            let name = names.generate();
            async move {
                let identity_id = adapters
                    .identities
                    .create_identity(&format!("{number}:bulk:login"))
                    .await
                    .unwrap();
                let queue = adapters
                    .queues
                    .create_queue(&QueueSpec {
                        name,
                        owner_identity_id: identity_id.clone(),
                        retention_seconds: None,
                    })
                    .await
                    .unwrap();
                let session = Session {
                    account_id: AccountId::try_from(100).unwrap(),
                    user_id: UserId::try_from(10_000 + number as u64).unwrap(),
                    session_id: SessionId::parse("bulk").unwrap(),
                    queue,
                    identity_id,
                    developer_login: None,
                    channels: Default::default(),
                    aes_key: SessionKey::generate(),
                    credentials: SessionCredentials {
                        access_key: "unused".into(),
                        secret_key: "unused".into(),
                        session_token: "unused".into(),
                        expires: now - 10,
                    },
                    ttl: now - 1,
                    created: now - 20,
                };
                adapters.sessions.put(&session).await.unwrap();
                session
            }
        })
        .buffer_unordered(8)
        .collect()
        .await;
    let created_in = started.elapsed();
    let ids: HashSet<&str> = sessions.iter().map(|s| s.identity_id.as_str()).collect();

    assert_eq!(count_queues(&admin, &names).await, SESSIONS);
    assert_eq!(
        count_identities(&admin, &stack.config.identity_pool_id, &ids).await,
        SESSIONS
    );

    let swept = stack.sweep_expired().await.expect("the sweep runs");
    assert_eq!(swept, SESSIONS, "one sweep removes every expired row");
    let swept_in = started.elapsed();

    let admin = &admin;
    let names = &names;
    eventually(
        Duration::from_secs(45),
        "every queue's deletion",
        move || async move { count_queues(admin, names).await == 0 },
    )
    .await;
    let ours = &ids;
    let pool = stack.config.identity_pool_id.as_str();
    eventually(
        Duration::from_secs(20),
        "every identity's deletion",
        move || async move { count_identities(admin, pool, ours).await == 0 },
    )
    .await;
    eprintln!(
        "1,000 sessions: created in {created_in:?}, swept by {swept_in:?}, all cleaned by {:?}",
        started.elapsed()
    );
}

/// The stage's queues (one ListQueues page holds 1,000).
async fn count_queues(admin: &Admin, names: &QueueNameGenerator) -> usize {
    admin
        .sqs
        .list_queues()
        .queue_name_prefix(names.name_prefix())
        .max_results(1000)
        .send()
        .await
        .expect("ListQueues works")
        .queue_urls()
        .len()
}

/// How many of `ids` the pool still holds, across every ListIdentities page.
async fn count_identities(admin: &Admin, pool: &str, ids: &HashSet<&str>) -> usize {
    let mut left = 0;
    let mut next: Option<String> = None;
    loop {
        let listed = admin
            .cognito
            .list_identities()
            .identity_pool_id(pool)
            .max_results(60)
            .set_next_token(next)
            .send()
            .await
            .expect("ListIdentities works");
        left += listed
            .identities()
            .iter()
            .filter(|identity| identity.identity_id().is_some_and(|id| ids.contains(id)))
            .count();
        match listed.next_token() {
            Some(token) => next = Some(token.to_string()),
            None => return left,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_concurrent_creates_of_one_session_share_one_queue_that_outlives_the_cleanup_stream()
{
    let stack = &Stack::start().await;
    let emulator = &stack.emulator;
    let admin = Admin::new(emulator).await;
    let path = format!("/create/5/6/{}", unique_session_id("race"));
    let answers: Vec<(u16, Value)> = futures::stream::iter(0..50)
        .map(|_| get(stack, &path))
        .buffer_unordered(50)
        .collect()
        .await;
    let sessions: Vec<&Value> = answers
        .iter()
        .map(|(status, answer)| {
            assert_eq!(*status, 200, "{answer}");
            &answer["session"]
        })
        .collect();
    let first = sessions[0];
    for session in &sessions {
        for field in ["sqsUrl", "aesKey", "identityId", "accessKey"] {
            assert_eq!(
                session[field], first[field],
                "{field} differs between answers"
            );
        }
    }

    // Only the winner's queue and identity remain, once the losers cleaned up after themselves
    // and the sessions table's stream has been drained by cleanup.
    tokio::time::sleep(Duration::from_secs(3)).await;
    // Session queues only: `sqs-push-local_` (the stage's upstream queues are `-`).
    let queues = admin
        .sqs
        .list_queues()
        .queue_name_prefix(format!("{}_", stack.config.prefix()))
        .send()
        .await
        .expect("ListQueues works");
    assert_eq!(
        queues.queue_urls(),
        [text(first, "sqsUrl").to_string()],
        "one queue"
    );
    let identities = admin
        .cognito
        .list_identities()
        .identity_pool_id(&stack.config.identity_pool_id)
        .max_results(60)
        .send()
        .await
        .expect("ListIdentities works");
    let ids: Vec<&str> = identities
        .identities()
        .iter()
        .filter_map(|identity| identity.identity_id())
        .collect();
    assert_eq!(ids, [text(first, "identityId")], "one identity");
}

/// A status answer's session without what only status adds (presence: `online`, `lastSeen`).
fn without_presence(session: &Value) -> Value {
    let mut session = session.clone();
    if let Some(fields) = session.as_object_mut() {
        fields.remove("online");
        fields.remove("lastSeen");
    }
    session
}
