//! SessionService's tests, against the in-memory fakes.

use super::*;
use crate::model::session::Credentials;
use crate::testing::ManualClock;
use crate::testing::memory::{MemoryIdentities, MemoryQueues, MemorySessionStore};

struct Fixture {
    service: SessionService,
    store: Arc<MemorySessionStore>,
    queues: Arc<MemoryQueues>,
    identities: Arc<MemoryIdentities>,
    clock: Arc<ManualClock>,
}

fn fixture() -> Fixture {
    let store = Arc::new(MemorySessionStore::default());
    let clock = Arc::new(ManualClock::at(1_000_000));
    let queues = Arc::new(MemoryQueues::default());
    let identities = Arc::new(MemoryIdentities::new(clock.clone(), 3600));
    let settings = SessionSettings {
        queue_names: QueueNameGenerator::new("sqs-push-test").unwrap(),
        refresh_margin_seconds: 900,
        idle_seconds: 3600,
        region: "us-east-1".into(),
    };
    let service = SessionService::new(
        store.clone(),
        queues.clone(),
        identities.clone(),
        clock.clone(),
        settings,
    );
    Fixture {
        service,
        store,
        queues,
        identities,
        clock,
    }
}

fn ids(account: u64, user: u64, session: &str) -> (AccountId, UserId, SessionId) {
    (
        AccountId::try_from(account).unwrap(),
        UserId::try_from(user).unwrap(),
        SessionId::parse(session).unwrap(),
    )
}

#[tokio::test]
async fn create_makes_a_queue_an_identity_and_a_row_with_ttl_after_expiry() {
    let f = fixture();
    let (a, u, s) = ids(100, 200, "s1");
    let session = f.service.create(a, u, s.clone(), Some(120)).await.unwrap();
    assert!(session.queue.name.starts_with("sqs-push-test_"));
    assert_eq!(session.credentials.expires, 1_000_000 + 3600);
    assert_eq!(session.ttl, 1_000_000 + 3600 + 3600);
    assert_eq!(f.store.get(u, &s).await.unwrap().unwrap(), session);
    let queue = f.queues.queue(&session.queue.url).unwrap();
    assert_eq!(queue.owner_identity_id, session.identity_id);
    assert_eq!(queue.retention_seconds, Some(120));
    assert!(f.identities.exists(&session.identity_id));
}

#[tokio::test]
async fn repeating_create_returns_the_same_queue_key_and_credentials() {
    let f = fixture();
    let (a, u, s) = ids(100, 200, "s1");
    let first = f.service.create(a, u, s.clone(), None).await.unwrap();
    f.clock.advance(60);
    let second = f.service.create(a, u, s, None).await.unwrap();
    assert_eq!(first, second);
    assert_eq!(f.queues.count(), 1);
}

#[tokio::test]
async fn repeating_create_near_expiry_keeps_queue_and_key_but_renews_credentials() {
    let f = fixture();
    let (a, u, s) = ids(100, 200, "s1");
    let first = f.service.create(a, u, s.clone(), None).await.unwrap();
    f.clock.advance(3600 - 600);
    let second = f.service.create(a, u, s.clone(), None).await.unwrap();
    assert_eq!(second.queue, first.queue);
    assert_eq!(second.aes_key, first.aes_key);
    assert_eq!(second.identity_id, first.identity_id);
    assert_ne!(second.credentials, first.credentials);
    assert_eq!(second.ttl, second.credentials.expires + 3600);
    assert_eq!(f.store.get(u, &s).await.unwrap().unwrap(), second);
}

#[tokio::test]
async fn the_same_pair_under_another_account_is_refused_and_nothing_changes() {
    let f = fixture();
    let (a, u, s) = ids(100, 200, "s1");
    let first = f.service.create(a, u, s.clone(), None).await.unwrap();
    let other = AccountId::try_from(101).unwrap();
    let error = f
        .service
        .create(other, u, s.clone(), None)
        .await
        .unwrap_err();
    assert!(matches!(error, SessionError::AccountMismatch { .. }));
    assert_eq!(f.store.get(u, &s).await.unwrap().unwrap(), first);
    assert_eq!(f.queues.count(), 1);
}

#[tokio::test]
async fn an_expired_row_is_replaced_by_a_new_queue() {
    let f = fixture();
    let (a, u, s) = ids(100, 200, "s1");
    let first = f.service.create(a, u, s.clone(), None).await.unwrap();
    f.clock.advance(7201);
    let second = f.service.create(a, u, s, None).await.unwrap();
    assert_ne!(second.queue, first.queue);
    assert_ne!(second.aes_key, first.aes_key);
}

#[tokio::test]
async fn a_failed_credential_call_leaves_no_queue_or_identity_behind() {
    let f = fixture();
    f.identities.fail_credentials(true);
    let (a, u, s) = ids(100, 200, "s1");
    let error = f.service.create(a, u, s.clone(), None).await.unwrap_err();
    assert!(matches!(error, SessionError::Backend(_)));
    assert_eq!(f.queues.count(), 0);
    assert_eq!(f.identities.count(), 0);
    assert!(f.store.get(u, &s).await.unwrap().is_none());
}

#[tokio::test]
async fn status_returns_a_live_session_and_not_one_of_another_account_or_expired() {
    let f = fixture();
    let (a, u, s) = ids(100, 200, "s1");
    let created = f.service.create(a, u, s.clone(), None).await.unwrap();
    assert_eq!(f.service.status(a, u, s.clone()).await.unwrap(), created);
    let other = AccountId::try_from(101).unwrap();
    let error = f.service.status(other, u, s.clone()).await.unwrap_err();
    assert!(matches!(error, SessionError::NotFound { .. }));
    f.clock.advance(7201);
    let error = f.service.status(a, u, s).await.unwrap_err();
    assert_eq!(error.to_string(), "session s1 of user 200 not found");
}

#[tokio::test]
async fn renew_keeps_queue_key_and_identity_and_extends_the_ttl() {
    let f = fixture();
    let (a, u, s) = ids(100, 200, "s1");
    let created = f.service.create(a, u, s.clone(), None).await.unwrap();
    f.clock.advance(100);
    let renewed = f.service.renew(a, u, s.clone()).await.unwrap();
    assert_eq!(renewed.queue, created.queue);
    assert_eq!(renewed.aes_key, created.aes_key);
    assert_eq!(renewed.identity_id, created.identity_id);
    assert_ne!(renewed.credentials, created.credentials);
    assert_eq!(renewed.ttl, created.ttl + 100);
    assert_eq!(f.store.get(u, &s).await.unwrap().unwrap(), renewed);
}

#[tokio::test]
async fn renew_uses_the_kept_developer_login_and_looks_nothing_up() {
    let f = fixture();
    let (a, u, s) = ids(100, 200, "s1");
    let created = f.service.create(a, u, s.clone(), None).await.unwrap();
    let login = created
        .developer_login
        .clone()
        .expect("create keeps the login");
    assert!(login.starts_with("200:s1:"), "{login}");
    assert_eq!(login.len(), "200:s1:".len() + 32);
    f.service.renew(a, u, s.clone()).await.unwrap();
    assert_eq!(f.identities.lookups(), 0);
    let again = f.service.create(a, u, ids(100, 200, "s2").2, None).await;
    assert_ne!(
        again.unwrap().developer_login,
        Some(login),
        "unique per session"
    );
}

#[tokio::test]
async fn renew_of_a_row_without_a_kept_login_looks_it_up_once() {
    let f = fixture();
    let (a, u, s) = ids(100, 200, "s1");
    let mut created = f.service.create(a, u, s.clone(), None).await.unwrap();
    created.developer_login = None;
    f.store.replace(&created).await.unwrap();
    let renewed = f.service.renew(a, u, s).await.unwrap();
    assert_eq!(renewed.identity_id, created.identity_id);
    assert_eq!(f.identities.lookups(), 1);
}

#[tokio::test]
async fn renew_of_a_missing_session_is_not_found_and_writes_nothing() {
    let f = fixture();
    let (a, u, s) = ids(100, 200, "gone");
    let error = f.service.renew(a, u, s.clone()).await.unwrap_err();
    assert!(matches!(error, SessionError::NotFound { .. }));
    assert!(f.store.is_empty());
}

#[tokio::test]
async fn credentials_reissued_for_a_row_destroyed_meanwhile_do_not_bring_it_back() {
    let f = fixture();
    let (a, u, s) = ids(100, 200, "s1");
    let created = f.service.create(a, u, s.clone(), None).await.unwrap();
    f.service.destroy(a, u, s.clone()).await.unwrap();
    let error = f.service.reissue_credentials(created).await.unwrap_err();
    assert!(matches!(error, SessionError::NotFound { .. }));
    assert!(f.store.get(u, &s).await.unwrap().is_none());
}

#[tokio::test]
async fn destroy_removes_row_and_queue_once_and_leaves_the_identity_to_cleanup() {
    let f = fixture();
    let (a, u, s) = ids(100, 200, "s1");
    let created = f.service.create(a, u, s.clone(), None).await.unwrap();
    let other = AccountId::try_from(101).unwrap();
    assert!(matches!(
        f.service.destroy(other, u, s.clone()).await.unwrap_err(),
        SessionError::NotFound { .. }
    ));
    let destroyed = f.service.destroy(a, u, s.clone()).await.unwrap();
    assert_eq!(destroyed, created);
    assert!(f.store.get(u, &s).await.unwrap().is_none());
    assert_eq!(f.queues.count(), 0);
    assert!(f.identities.exists(&created.identity_id));
    assert!(matches!(
        f.service.destroy(a, u, s).await.unwrap_err(),
        SessionError::NotFound { .. }
    ));
}

#[tokio::test]
async fn list_pages_through_live_sessions_only() {
    let f = fixture();
    for (user, session) in [(1, "a"), (1, "b"), (2, "a"), (3, "x"), (4, "y")] {
        let (a, u, s) = ids(100, user, session);
        f.service.create(a, u, s, None).await.unwrap();
    }
    // An expired row in the middle of the key order is skipped.
    let (_, u, s) = ids(100, 2, "a");
    let mut expired = f.store.get(u, &s).await.unwrap().unwrap();
    expired.ttl = 5;
    f.store.put(&expired).await.unwrap();

    let first = f.service.list(2, None).await.unwrap();
    let names = |list: &SessionList| {
        list.sessions
            .iter()
            .map(|s| format!("{}/{}", s.user_id, s.session_id))
            .collect::<Vec<_>>()
    };
    assert_eq!(names(&first), ["1/a", "1/b"]);
    let second = f.service.list(2, first.next.clone()).await.unwrap();
    assert_eq!(names(&second), ["3/x", "4/y"]);
    assert!(second.next.is_none());
}

#[test]
fn debug_output_hides_credentials() {
    let credentials = Credentials {
        access_key: "AKIA-SECRET".into(),
        secret_key: "very-secret".into(),
        session_token: "token".into(),
        expires: 5,
    };
    let printed = format!("{credentials:?}");
    assert!(!printed.contains("SECRET") && !printed.contains("very-secret"));
}

#[tokio::test]
async fn concurrent_creates_of_one_session_answer_with_the_winner_and_leave_one_queue() {
    let mut f = fixture();
    // Latency makes every create read "no row" before any of them writes.
    let queues = Arc::new(MemoryQueues::with_latency(
        std::time::Duration::from_millis(2),
    ));
    f.service = SessionService::new(
        f.store.clone(),
        queues.clone(),
        f.identities.clone(),
        f.clock.clone(),
        f.service.settings().clone(),
    );
    let (a, u, s) = ids(1, 2, "tab");
    let answers =
        futures::future::join_all((0..10).map(|_| f.service.create(a, u, s.clone(), None))).await;
    let answers: Vec<Session> = answers.into_iter().map(Result::unwrap).collect();
    assert!(answers.iter().all(|answer| answer == &answers[0]));
    assert_eq!(queues.count(), 1, "the losers deleted their queues");
    assert_eq!(
        f.identities.count(),
        1,
        "the losers deleted their identities"
    );
    assert!(queues.queue(&answers[0].queue.url).is_some());
    assert_eq!(
        f.store.get(u, &s).await.unwrap().as_ref(),
        Some(&answers[0])
    );
}

#[tokio::test]
async fn destroy_does_not_remove_a_row_that_replaced_the_one_it_read() {
    let f = fixture();
    let (a, u, s) = ids(1, 2, "tab");
    let first = f.service.create(a, u, s.clone(), None).await.unwrap();
    let mut replacement = first.clone();
    replacement.queue.url = "memory://queues/000000000000/other".into();
    f.store.put(&replacement).await.unwrap();
    let error = f
        .store
        .delete_if_queue(u, &s, &first.queue.url)
        .await
        .unwrap_err();
    assert_eq!(error.kind, PortErrorKind::ConditionFailed);
    assert_eq!(f.store.get(u, &s).await.unwrap(), Some(replacement));
}
