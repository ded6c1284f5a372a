//! ChannelService's tests, against the in-memory fakes; with SessionService where a session's
//! lifecycle (renew, destroy, re-create) changes its memberships.

use super::*;
use crate::session::queue_name::QueueNameGenerator;
use crate::session::{SessionService, SessionSettings};
use crate::testing::ManualClock;
use crate::testing::memory::{MemoryIdentities, MemoryQueues, MemorySessionStore};

struct Fixture {
    channels: ChannelService,
    sessions: SessionService,
    store: Arc<MemorySessionStore>,
    clock: Arc<ManualClock>,
}

fn fixture(max_per_session: usize) -> Fixture {
    let store = Arc::new(MemorySessionStore::default());
    let clock = Arc::new(ManualClock::at(1_000_000));
    let sessions = SessionService::new(
        store.clone(),
        Arc::new(MemoryQueues::default()),
        Arc::new(MemoryIdentities::new(clock.clone(), 3600)),
        clock.clone(),
        SessionSettings {
            queue_names: QueueNameGenerator::new("sqs-push-test").unwrap(),
            refresh_margin_seconds: 900,
            idle_seconds: 600,
            region: "us-east-1".into(),
        },
    );
    let channels = ChannelService::new(
        store.clone(),
        clock.clone(),
        ChannelSettings { max_per_session },
    );
    Fixture {
        channels,
        sessions,
        store,
        clock,
    }
}

fn ids(user: u64, session: &str) -> (AccountId, UserId, SessionId) {
    (
        AccountId::try_from(1).unwrap(),
        UserId::try_from(user).unwrap(),
        SessionId::parse(session).unwrap(),
    )
}

fn names(list: &[&str]) -> Vec<ChannelName> {
    list.iter()
        .map(|name| ChannelName::parse(name).unwrap())
        .collect()
}

async fn members(f: &Fixture, channel: &str) -> Vec<(u64, String)> {
    let page = f
        .channels
        .members(&names(&[channel])[0], 100, None)
        .await
        .unwrap();
    page.members
        .into_iter()
        .map(|member| (member.user_id, member.session_id))
        .collect()
}

#[tokio::test]
async fn subscribing_twice_is_one_membership_and_the_row_lists_the_channel() {
    let f = fixture(100);
    let (a, u, s) = ids(7, "tab");
    f.sessions.create(a, u, s.clone(), None).await.unwrap();
    let room = names(&["room:7"]);
    f.channels.subscribe(a, u, &s, &room).await.unwrap();
    let again = f.channels.subscribe(a, u, &s, &room).await.unwrap();
    assert_eq!(again.channels.len(), 1);
    assert_eq!(f.store.membership_count(), 1);
    assert_eq!(members(&f, "room:7").await, vec![(7, "tab".to_string())]);
    assert_eq!(f.channels.count(&room[0]).await.unwrap(), 1);
    let status = f.sessions.status(a, u, s).await.unwrap();
    assert!(status.channels.contains(&room[0]));
}

#[tokio::test]
async fn a_batch_over_the_limit_subscribes_nothing_and_names_the_limit() {
    let f = fixture(3);
    let (a, u, s) = ids(7, "tab");
    f.sessions.create(a, u, s.clone(), None).await.unwrap();
    f.channels
        .subscribe(a, u, &s, &names(&["a", "b"]))
        .await
        .unwrap();
    let error = f
        .channels
        .subscribe(a, u, &s, &names(&["c", "d"]))
        .await
        .unwrap_err();
    assert!(matches!(error, SessionError::Limit(_)), "{error}");
    assert!(
        error
            .to_string()
            .contains("SQS_PUSH_MAX_CHANNELS_PER_SESSION"),
        "{error}"
    );
    assert_eq!(f.store.membership_count(), 2, "nothing of the refused call");
    // Re-subscribing to held channels adds nothing, so it is not over the limit.
    f.channels
        .subscribe(a, u, &s, &names(&["a", "b", "c"]))
        .await
        .unwrap();
    let too_many: Vec<ChannelName> = (0..26)
        .map(|n| ChannelName::parse(&format!("c{n}")).unwrap())
        .collect();
    let error = f.channels.subscribe(a, u, &s, &too_many).await.unwrap_err();
    assert!(error.to_string().contains("at most 25"), "{error}");
}

#[tokio::test]
async fn a_session_that_is_gone_or_of_another_account_cannot_subscribe() {
    let f = fixture(100);
    let (a, u, s) = ids(7, "tab");
    let error = f
        .channels
        .subscribe(a, u, &s, &names(&["x"]))
        .await
        .unwrap_err();
    assert!(matches!(error, SessionError::NotFound { .. }));
    f.sessions.create(a, u, s.clone(), None).await.unwrap();
    let other = AccountId::try_from(2).unwrap();
    let error = f
        .channels
        .subscribe(other, u, &s, &names(&["x"]))
        .await
        .unwrap_err();
    assert!(matches!(error, SessionError::NotFound { .. }));
    // Past its ttl (3600 s of credentials + 600 idle): not found either.
    f.clock.advance(4_200);
    let error = f
        .channels
        .subscribe(a, u, &s, &names(&["x"]))
        .await
        .unwrap_err();
    assert!(matches!(error, SessionError::NotFound { .. }));
    assert_eq!(f.store.membership_count(), 0);
}

#[tokio::test]
async fn unsubscribing_answers_whether_it_was_subscribed() {
    let f = fixture(100);
    let (a, u, s) = ids(7, "tab");
    f.sessions.create(a, u, s.clone(), None).await.unwrap();
    let room = &names(&["room"])[0];
    f.channels
        .subscribe(a, u, &s, std::slice::from_ref(room))
        .await
        .unwrap();
    assert!(f.channels.unsubscribe(a, u, &s, room).await.unwrap());
    assert!(!f.channels.unsubscribe(a, u, &s, room).await.unwrap());
    assert!(members(&f, "room").await.is_empty());
    assert!(
        f.sessions
            .status(a, u, s)
            .await
            .unwrap()
            .channels
            .is_empty()
    );
}

#[tokio::test]
async fn renew_extends_the_memberships_and_keeps_them() {
    let f = fixture(100);
    let (a, u, s) = ids(7, "tab");
    f.sessions.create(a, u, s.clone(), None).await.unwrap();
    f.channels
        .subscribe(a, u, &s, &names(&["room"]))
        .await
        .unwrap();
    f.clock.advance(3_000);
    let renewed = f.sessions.renew(a, u, s.clone()).await.unwrap();
    assert_eq!(renewed.channels.len(), 1, "renew keeps subscriptions");
    // Past the first ttl, within the renewed one: still a member.
    f.clock.advance(2_000);
    assert_eq!(members(&f, "room").await.len(), 1);
    let page = f
        .store
        .channel_page(&names(&["room"])[0], None, 10)
        .await
        .unwrap();
    assert_eq!(page.recipients[0].ttl, renewed.ttl);
}

#[tokio::test]
async fn destroy_ends_the_memberships_at_once() {
    let f = fixture(100);
    let (a, u, s) = ids(7, "tab");
    f.sessions.create(a, u, s.clone(), None).await.unwrap();
    f.channels
        .subscribe(a, u, &s, &names(&["room", "news"]))
        .await
        .unwrap();
    f.sessions.destroy(a, u, s).await.unwrap();
    assert_eq!(f.store.membership_count(), 0);
    assert_eq!(f.channels.count(&names(&["room"])[0]).await.unwrap(), 0);
}

#[tokio::test]
async fn an_expired_session_leaves_the_count_and_a_new_one_starts_with_none() {
    let f = fixture(100);
    let (a, u, s) = ids(7, "tab");
    f.sessions.create(a, u, s.clone(), None).await.unwrap();
    f.channels
        .subscribe(a, u, &s, &names(&["room"]))
        .await
        .unwrap();
    f.clock.advance(4_200);
    assert_eq!(f.channels.count(&names(&["room"])[0]).await.unwrap(), 0);
    assert!(members(&f, "room").await.is_empty());
    let again = f.sessions.create(a, u, s.clone(), None).await.unwrap();
    assert!(
        again.channels.is_empty(),
        "a re-created session starts with none"
    );
    assert!(members(&f, "room").await.is_empty());
    // The old membership row waits for cleanup, which removes only rows of the old queue.
    f.channels
        .subscribe(a, u, &s, &names(&["room"]))
        .await
        .unwrap();
    assert_eq!(members(&f, "room").await.len(), 1);
}

#[tokio::test]
async fn a_members_page_resumes_where_the_last_ended() {
    let f = fixture(100);
    for user in 0..5 {
        let (a, u, s) = ids(user, "tab");
        f.sessions.create(a, u, s.clone(), None).await.unwrap();
        f.channels
            .subscribe(a, u, &s, &names(&["big"]))
            .await
            .unwrap();
    }
    let channel = &names(&["big"])[0];
    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let page = f.channels.members(channel, 2, after).await.unwrap();
        seen.extend(page.members.into_iter().map(|member| member.user_id));
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    assert_eq!(seen, vec![0, 1, 2, 3, 4]);
}
