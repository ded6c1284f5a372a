//! The core promise end to end: a backend creates a session, a producer notifies the user, and a
//! client holding only what create returned long-polls its queue and decrypts the message.

use aws_credential_types::Credentials;
use serde_json::{Value, json};
use sqs_push_core::crypto::{SessionCipher, SessionKey};
use sqs_push_tests::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_created_session_receives_and_decrypts_a_user_notification() {
    let stack = Stack::start().await;
    let emulator = &stack.emulator;
    let session_id = unique_session_id("browser");

    // Create, as a backend would.
    let (status, created) = get(&stack, &format!("/create/100/200/{session_id}")).await;
    assert_eq!(status, 200, "{created}");
    assert_eq!(created["success"], true);
    let session = &created["session"];
    let queue_name = text(session, "sqsQueueName");
    assert!(queue_name.starts_with("sqs-push-local_"), "{queue_name}");
    assert_eq!(queue_name.len(), "sqs-push-local_".len() + 43);
    assert!(text(session, "sqsUrl").ends_with(&format!("/{queue_name}")));
    assert_eq!(session["userId"], 200);
    assert_eq!(session["accountId"], 100);
    assert_eq!(session["sessionId"], session_id.as_str());
    assert_eq!(session["region"], "us-east-1");
    assert!(text(session, "identityId").starts_with("us-east-1:"));
    let key = SessionKey::from_base64(text(session, "aesKey")).expect("aesKey is 32 bytes");
    for field in ["accessKey", "secretKey", "sessionToken"] {
        assert!(!text(session, field).is_empty(), "{field} is empty");
    }
    let expires = session["expires"].as_u64().expect("expires is a number");
    let ttl = session["ttl"].as_u64().expect("ttl is a number");
    assert_eq!(
        ttl,
        expires + 3600,
        "ttl is credential expiry plus the idle period"
    );
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert!(
        expires > now + 3000 && expires <= now + 3700,
        "expires {expires} now {now}"
    );

    // The queue is tagged with its owner, which the role's condition keys on.
    let admin = aws_sdk_sqs::Client::new(&admin_config(emulator).await);
    let tags = admin
        .list_queue_tags()
        .queue_url(text(session, "sqsUrl"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        tags.tags().unwrap().get("owner").map(String::as_str),
        Some(text(session, "identityId"))
    );

    // The browser's side: only the returned credentials, long-polling the returned URL.
    let browser = session_sqs_client(emulator, session).await;
    let poll = long_poll(&browser, session);

    // A producer notifies the user.
    let (status, notified) = get(&stack, "/notify/user/200?message=Hello+User").await;
    assert_eq!(status, 200, "{notified}");
    assert_eq!(notified["sentDirectly"], 1, "{notified}");
    let message_id = notified["messageId"].as_str().unwrap().to_string();

    let received = poll
        .await
        .unwrap()
        .expect("receive works with the session's credentials");
    let messages = received.messages();
    assert_eq!(messages.len(), 1);
    let body = messages[0].body().unwrap();
    let mac = messages[0]
        .message_attributes()
        .and_then(|attributes| attributes.get("mac"))
        .and_then(|attribute| attribute.string_value())
        .expect("the message carries a mac attribute");
    let plaintext = SessionCipher::new(&key)
        .open(body, Some(mac))
        .expect("the tag verifies and the body decrypts");
    let message: Value = serde_json::from_slice(&plaintext).unwrap();
    assert_eq!(
        message,
        json!({"message": "Hello User", "userId": 200, "messageId": message_id})
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_is_idempotent_for_a_live_session_and_refuses_another_account() {
    let stack = Stack::start().await;
    let session_id = unique_session_id("tab");
    let path = format!("/create/100/201/{session_id}");

    let (_, first) = get(&stack, &path).await;
    let (status, second) = get(&stack, &path).await;
    assert_eq!(status, 200);
    for field in ["sqsUrl", "aesKey", "identityId", "accessKey", "expires"] {
        assert_eq!(first["session"][field], second["session"][field], "{field}");
    }

    let (status, conflict) = get(&stack, &format!("/create/101/201/{session_id}")).await;
    assert_eq!(status, 409, "{conflict}");
    assert_eq!(conflict["success"], false);
    assert!(
        conflict["error"]
            .as_str()
            .unwrap()
            .contains("another accountId")
    );
    let (_, after) = get(&stack, &path).await;
    assert_eq!(after["session"]["sqsUrl"], first["session"]["sqsUrl"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_ids_are_400s_naming_the_field_and_unsigned_calls_are_403s() {
    let stack = Stack::start().await;

    for (path, field) in [
        ("/create/x/200/s", "accountId"),
        ("/create/100/9007199254740992/s", "userId"),
        ("/create/100/200/caf%C3%A9", "sessionId"),
        (
            "/create/100/200/s?MessageRetentionPeriod=5",
            "MessageRetentionPeriod",
        ),
        ("/notify/user/-1?message=x", "userId"),
    ] {
        let (status, answer) = get(&stack, path).await;
        assert_eq!(status, 400, "{path}: {answer}");
        let error = answer["error"].as_str().unwrap();
        assert!(error.contains(field), "{path}: {error}");
    }

    let unsigned = reqwest::get(format!("{}/create/100/200/s", stack.api_url()))
        .await
        .unwrap();
    assert_eq!(unsigned.status(), 403);
    let answer: Value = unsigned.json().await.unwrap();
    assert!(answer["error"].as_str().unwrap().contains("Authorization"));

    let wrong_key = Credentials::new("AKIDTESTSTACK", "wrong-secret", None, None, "test");
    let (status, text) = sqs_push_cli::call_gw::call(
        &format!("{}/create/100/200/s", stack.api_url()),
        "GET",
        "us-east-1",
        &wrong_key,
        b"",
    )
    .await
    .unwrap();
    assert_eq!(status, 403);
    assert!(text.contains("signature does not match"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_enhanced_flow_setting_hands_out_cognito_credentials_for_the_identity() {
    let stack = Stack::builder()
        .configure(|options| options.stack.credential_flow = sqs_push_aws::CredentialFlow::Enhanced)
        .start()
        .await;
    let emulator = &stack.emulator;
    let (status, created) = get(&stack, &format!("/create/1/2/{}", unique_session_id("enh"))).await;
    assert_eq!(status, 200, "{created}");
    let session = &created["session"];
    // GetCredentialsForIdentity, not STS: the emulator's Cognito answers with its own fixed key
    // and a short expiry, where the classic flow gets ASIA… keys from STS for an hour.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let expires = session["expires"].as_u64().unwrap();
    assert!(
        expires > now && expires < now + 3000,
        "expires {expires}, now {now}"
    );
    assert!(
        !text(session, "accessKey").starts_with("ASIA"),
        "{}",
        text(session, "accessKey")
    );
    assert_eq!(session["ttl"].as_u64().unwrap(), expires + 3600);
    // The developer identity's token is the login GetCredentialsForIdentity needs; the
    // credentials it hands out read the queue.
    let browser = session_sqs_client(emulator, session).await;
    browser
        .receive_message()
        .queue_url(text(session, "sqsUrl"))
        .wait_time_seconds(0)
        .send()
        .await
        .expect("enhanced-flow credentials read the queue");
}
