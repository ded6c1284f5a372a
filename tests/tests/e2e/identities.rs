//! An identityId is not a credential (issue 11, item 5; docs/security.md): identities are
//! developer-authenticated in a pool that admits no unauthenticated identities, so someone who
//! holds only an identityId from a create answer mints nothing, while create and renew still hand
//! out credentials that read the queue.

use aws_credential_types::Credentials;
use aws_sdk_cognitoidentity::error::ProvideErrorMetadata;
use serde_json::Value;
use sqs_push_tests::*;

/// A Cognito client as anyone on the internet has one: the calls below are unsigned on AWS.
async fn stranger_cognito(emulator: &Emulator) -> aws_sdk_cognitoidentity::Client {
    let anyone = Credentials::new("AKIDSTRANGER", "stranger-secret", None, None, "stranger");
    aws_sdk_cognitoidentity::Client::new(&sdk_config(emulator, "us-east-1", anyone).await)
}

/// The session's own credentials, as the browser holds them.
fn session_credentials(session: &Value) -> Credentials {
    Credentials::new(
        text(session, "accessKey"),
        text(session, "secretKey"),
        Some(text(session, "sessionToken").to_string()),
        None,
        "session",
    )
}

fn code<E: ProvideErrorMetadata>(error: &E) -> String {
    error.code().unwrap_or("(no code)").to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_identity_id_alone_mints_no_credentials_but_create_and_renew_do() {
    let stack = Stack::start().await;
    let emulator = &stack.emulator;
    let session_id = unique_session_id("ident");
    let path = format!("/100/700/{session_id}");
    let (status, created) = get(&stack, &format!("/create{path}")).await;
    assert_eq!(status, 200, "{created}");
    let session = created["session"].clone();
    let identity_id = text(&session, "identityId").to_string();
    let pool_id = stack.config.identity_pool_id.clone();

    let stranger = stranger_cognito(emulator).await;
    // A new unauthenticated identity: the pool admits none.
    let error = stranger
        .get_id()
        .identity_pool_id(&pool_id)
        .send()
        .await
        .expect_err("GetId without logins is refused");
    assert_eq!(code(&error), "NotAuthorizedException", "{error:?}");
    // A token for the leaked identity, without its login.
    let error = stranger
        .get_open_id_token()
        .identity_id(&identity_id)
        .send()
        .await
        .expect_err("GetOpenIdToken with only an identityId is refused");
    assert_eq!(code(&error), "NotAuthorizedException", "{error:?}");
    // Credentials for the leaked identity, with no login or a forged one.
    let error = stranger
        .get_credentials_for_identity()
        .identity_id(&identity_id)
        .send()
        .await
        .expect_err("GetCredentialsForIdentity with only an identityId is refused");
    assert_eq!(code(&error), "NotAuthorizedException", "{error:?}");
    let error = stranger
        .get_credentials_for_identity()
        .identity_id(&identity_id)
        .logins("cognito-identity.amazonaws.com", "forged-token")
        .send()
        .await
        .expect_err("a forged login token is refused");
    assert_eq!(code(&error), "NotAuthorizedException", "{error:?}");
    // The developer call itself needs the api function's role, not a browser's credentials…
    let browser_cognito = aws_sdk_cognitoidentity::Client::new(
        &sdk_config(emulator, "us-east-1", session_credentials(&session)).await,
    );
    let error = browser_cognito
        .get_open_id_token_for_developer_identity()
        .identity_pool_id(&pool_id)
        .identity_id(&identity_id)
        .logins(&stack.config.developer_provider_name, "700:guess")
        .send()
        .await
        .expect_err("a browser cannot call the developer API");
    assert_eq!(code(&error), "AccessDeniedException", "{error:?}");
    // …and STS takes no token Cognito did not issue.
    let sts = aws_sdk_sts::Client::new(
        &sdk_config(
            emulator,
            "us-east-1",
            Credentials::new("AKIDSTRANGER", "stranger-secret", None, None, "stranger"),
        )
        .await,
    );
    let error = sts
        .assume_role_with_web_identity()
        .role_arn(&stack.config.unauthenticated_role_arn)
        .role_session_name("stranger")
        .web_identity_token(&identity_id)
        .send()
        .await
        .expect_err("an identityId is no web identity token");
    assert_eq!(code(&error), "InvalidIdentityToken", "{error:?}");

    // Create's credentials read the queue…
    let browser = session_sqs_client(emulator, &session).await;
    browser
        .receive_message()
        .queue_url(text(&session, "sqsUrl"))
        .wait_time_seconds(0)
        .send()
        .await
        .expect("create's credentials read the queue");
    // …and renew re-issues a token for the same identity and hands out new ones that do too.
    let (status, renewed) = get(&stack, &format!("/renew{path}")).await;
    assert_eq!(status, 200, "{renewed}");
    let renewed = &renewed["session"];
    assert_eq!(text(renewed, "identityId"), identity_id);
    assert_ne!(renewed["sessionToken"], session["sessionToken"]);
    let browser = session_sqs_client(emulator, renewed).await;
    browser
        .receive_message()
        .queue_url(text(renewed, "sqsUrl"))
        .wait_time_seconds(0)
        .send()
        .await
        .expect("renew's credentials read the queue");

    // The list no longer shows identity ids.
    let (status, list) = get(&stack, "/status").await;
    assert_eq!(status, 200, "{list}");
    assert!(!list.to_string().contains(&identity_id), "{list}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_session_gets_an_identity_of_its_own_with_a_developer_login() {
    let stack = Stack::start().await;
    let emulator = &stack.emulator;
    let mut sessions = Vec::new();
    for tag in ["a", "b"] {
        let path = format!("/create/1/701/{}", unique_session_id(tag));
        let (status, created) = get(&stack, &path).await;
        assert_eq!(status, 200, "{created}");
        sessions.push(created["session"].clone());
    }
    let first = &sessions[0];
    assert_ne!(first["identityId"], sessions[1]["identityId"]);

    let admin = aws_sdk_cognitoidentity::Client::new(&admin_config(emulator).await);
    let pool = admin
        .describe_identity_pool()
        .identity_pool_id(&stack.config.identity_pool_id)
        .send()
        .await
        .unwrap();
    assert!(!pool.allow_unauthenticated_identities());
    assert_eq!(
        pool.developer_provider_name(),
        Some(stack.config.developer_provider_name.as_str())
    );
    assert_eq!(stack.config.developer_provider_name, "sqs-push.local");
    let identity = admin
        .describe_identity()
        .identity_id(text(first, "identityId"))
        .send()
        .await
        .unwrap();
    assert_eq!(identity.logins(), ["sqs-push.local"]);
}

/// Requests the emulator served so far with this X-Amz-Target (`/_emulator/stats`).
pub(crate) async fn served(emulator: &Emulator, target: &str) -> u64 {
    let stats: Value = reqwest::get(format!("{}/_emulator/stats", emulator.url))
        .await
        .expect("the emulator answers /_emulator/stats")
        .json()
        .await
        .expect("stats are JSON");
    stats["byTarget"][target].as_u64().unwrap_or(0)
}

/// LookupDeveloperIdentity is throttled at authentication volumes (issue 23): renew asks for the
/// identity's token with the developer login kept in the session row instead.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn renew_never_calls_lookup_developer_identity() {
    const LOOKUP: &str = "AWSCognitoIdentityService.LookupDeveloperIdentity";
    const TOKEN: &str = "AWSCognitoIdentityService.GetOpenIdTokenForDeveloperIdentity";
    let stack = Stack::start().await;
    let emulator = &stack.emulator;
    let path = format!("/100/702/{}", unique_session_id("renew"));
    let (status, created) = get(&stack, &format!("/create{path}")).await;
    assert_eq!(status, 200, "{created}");
    let (lookups, tokens) = (
        served(emulator, LOOKUP).await,
        served(emulator, TOKEN).await,
    );
    for _ in 0..3 {
        let (status, renewed) = get(&stack, &format!("/renew{path}")).await;
        assert_eq!(status, 200, "{renewed}");
        let browser = session_sqs_client(emulator, &renewed["session"]).await;
        browser
            .receive_message()
            .queue_url(text(&renewed["session"], "sqsUrl"))
            .wait_time_seconds(0)
            .send()
            .await
            .expect("renew's credentials read the queue");
    }
    assert_eq!(served(emulator, LOOKUP).await - lookups, 0, "lookups");
    assert_eq!(
        served(emulator, TOKEN).await - tokens,
        3,
        "one token per renew, for the kept login"
    );
}
