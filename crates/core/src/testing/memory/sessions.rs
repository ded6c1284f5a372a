//! The sessions table in memory: rows in a sorted map, read in the order a DynamoDB scan reads
//! them, with switches that make reads or writes fail.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;

use crate::model::channel::ChannelName;
use crate::model::ids::{AccountId, SessionId, UserId};
use crate::model::recipient::{Recipient, RecipientPage, ScanPosition};
use crate::model::session::Session;
use crate::ports::{PortError, PortErrorKind};
use crate::ports::{SessionCursor, SessionPage, SessionStore};

/// A row's place in the store: the key's hash first, as DynamoDB orders a scan (and cuts its
/// segments as ranges of that hash), then the key itself (`None` sorts first: where a hash
/// range starts).
type RowKey = (u64, Option<(UserId, SessionId)>);

fn row_key(user_id: UserId, session_id: &SessionId) -> RowKey {
    (
        key_hash(user_id, session_id),
        Some((user_id, session_id.clone())),
    )
}

/// A stored row: the session, and the routing projection a scan or an index query reads
/// (kept ready, as DynamoDB keeps the index, so a scan costs what reading a page costs).
#[derive(Debug, Clone)]
struct Row {
    session: Session,
    recipient: Recipient,
}

impl From<&Session> for Row {
    fn from(session: &Session) -> Self {
        Self {
            session: session.clone(),
            recipient: Recipient::from(session),
        }
    }
}

/// A membership's key: the channel, then the member (`userId`, `sessionId`), as the channels
/// table sorts them.
type MembershipKey = (ChannelName, UserId, SessionId);

/// Sessions in a sorted map, in the order a DynamoDB scan reads them, and their channel
/// memberships in another (always locked after `rows`).
#[derive(Debug, Default)]
pub struct MemorySessionStore {
    rows: Mutex<BTreeMap<RowKey, Row>>,
    memberships: Mutex<BTreeMap<MembershipKey, Recipient>>,
    /// Channel pages read.
    channel_pages: AtomicU64,
    /// A delay per scan page, to imitate DynamoDB's latency in benchmarks.
    scan_latency_micros: AtomicU64,
    /// Scan pages read.
    scan_pages: AtomicU64,
    /// Reads fail with this kind while set (a throttled or broken table).
    failing_reads: Mutex<Option<PortErrorKind>>,
    /// Membership writes fail with this kind while set.
    failing_writes: Mutex<Option<PortErrorKind>>,
}

impl MemorySessionStore {
    /// Makes every read (get, the session queries, the scan) fail with `kind` until `None`.
    pub fn fail_reads(&self, kind: Option<PortErrorKind>) {
        *self.failing_reads.lock().unwrap() = kind;
    }

    /// Makes every membership write (subscribe, unsubscribe, refresh, remove) fail with `kind`
    /// until `None`.
    pub fn fail_writes(&self, kind: Option<PortErrorKind>) {
        *self.failing_writes.lock().unwrap() = kind;
    }

    fn write_check(&self, operation: &'static str) -> Result<(), PortError> {
        match *self.failing_writes.lock().unwrap() {
            Some(kind) => Err(PortError::new(
                kind,
                operation,
                "memory memberships",
                "injected",
            )),
            None => Ok(()),
        }
    }

    fn read_check(&self, operation: &'static str) -> Result<(), PortError> {
        match *self.failing_reads.lock().unwrap() {
            Some(kind) => Err(PortError::new(
                kind,
                operation,
                "memory sessions",
                "injected",
            )),
            None => Ok(()),
        }
    }

    /// Every row's routing projection, in scan order.
    pub fn recipients(&self) -> Vec<Recipient> {
        let rows = self.rows.lock().unwrap();
        rows.values().map(|row| row.recipient.clone()).collect()
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.rows.lock().unwrap().len()
    }

    /// True when there are no rows.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Makes every [`SessionStore::scan_page`] call take `latency`.
    pub fn set_scan_latency(&self, latency: Duration) {
        self.scan_latency_micros
            .store(latency.as_micros() as u64, Ordering::Relaxed);
    }

    /// Scan pages read so far.
    pub fn scan_pages(&self) -> u64 {
        self.scan_pages.load(Ordering::Relaxed)
    }

    /// Channel pages read so far.
    pub fn channel_pages(&self) -> u64 {
        self.channel_pages.load(Ordering::Relaxed)
    }

    /// Membership rows stored, of every channel.
    pub fn membership_count(&self) -> usize {
        self.memberships.lock().unwrap().len()
    }

    /// Writes a membership row directly (benchmarks seed large channels this way).
    pub fn put_membership(&self, channel: &ChannelName, recipient: Recipient) {
        self.memberships.lock().unwrap().insert(
            (
                channel.clone(),
                recipient.user_id,
                recipient.session_id.clone(),
            ),
            recipient,
        );
    }

    fn condition_failed(operation: &'static str, session: &Session, why: &str) -> PortError {
        PortError::new(
            PortErrorKind::ConditionFailed,
            operation,
            session.session_id.as_str(),
            why.to_string(),
        )
    }
}

/// A stable hash of a row's key (FNV-1a), standing in for DynamoDB's partition hash.
fn key_hash(user_id: UserId, session_id: &SessionId) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in user_id
        .get()
        .to_le_bytes()
        .iter()
        .chain(session_id.as_str().as_bytes())
    {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

/// Where segment `segment` of `total` starts in hash order: segments are equal hash ranges.
fn segment_start(segment: u32, total: u32) -> u128 {
    (u128::from(segment) << 64).div_ceil(u128::from(total.max(1)))
}

/// Up to `limit` (at least one) rows from `rows` that `keep` accepts, and where to resume: like
/// DynamoDB, a full page carries its last key even if nothing is left.
fn page<'a>(
    rows: impl Iterator<Item = &'a Row>,
    keep: impl Fn(&Recipient) -> bool,
    limit: usize,
) -> RecipientPage {
    let limit = limit.max(1);
    let recipients: Vec<Recipient> = rows
        .map(|row| &row.recipient)
        .filter(|recipient| keep(recipient))
        .take(limit)
        .cloned()
        .collect();
    let next = match recipients.last() {
        Some(last) if recipients.len() == limit => Some(ScanPosition {
            user_id: last.user_id,
            session_id: last.session_id.clone(),
        }),
        _ => None,
    };
    RecipientPage { recipients, next }
}

#[async_trait]
impl SessionStore for MemorySessionStore {
    async fn get(
        &self,
        user_id: UserId,
        session_id: &SessionId,
    ) -> Result<Option<Session>, PortError> {
        self.read_check("get")?;
        let rows = self.rows.lock().unwrap();
        Ok(rows
            .get(&row_key(user_id, session_id))
            .map(|row| row.session.clone()))
    }

    async fn put(&self, session: &Session) -> Result<(), PortError> {
        let key = row_key(session.user_id, &session.session_id);
        self.rows.lock().unwrap().insert(key, Row::from(session));
        Ok(())
    }

    async fn put_new(&self, session: &Session, now: u64) -> Result<(), PortError> {
        let key = row_key(session.user_id, &session.session_id);
        let mut rows = self.rows.lock().unwrap();
        match rows.get(&key) {
            Some(row) if row.session.ttl > now => Err(PortError::new(
                PortErrorKind::ConditionFailed,
                "put_new",
                session.session_id.as_str(),
                "a live row exists",
            )),
            _ => {
                rows.insert(key, Row::from(session));
                Ok(())
            }
        }
    }

    async fn delete_if_queue(
        &self,
        user_id: UserId,
        session_id: &SessionId,
        queue_url: &str,
    ) -> Result<Session, PortError> {
        let key = row_key(user_id, session_id);
        let mut rows = self.rows.lock().unwrap();
        match rows.get(&key) {
            Some(row) if row.session.queue.url == queue_url => {
                Ok(rows.remove(&key).expect("present").session)
            }
            _ => Err(PortError::new(
                PortErrorKind::ConditionFailed,
                "delete_if_queue",
                session_id.as_str(),
                "the row was removed or replaced",
            )),
        }
    }

    async fn delete(
        &self,
        user_id: UserId,
        session_id: &SessionId,
    ) -> Result<Option<Session>, PortError> {
        Ok(self
            .rows
            .lock()
            .unwrap()
            .remove(&row_key(user_id, session_id))
            .map(|row| row.session))
    }

    async fn recipients_of_user(&self, user_id: UserId) -> Result<Vec<Recipient>, PortError> {
        self.read_check("recipients_of_user")?;
        let rows = self.rows.lock().unwrap();
        let mut recipients: Vec<Recipient> = rows
            .values()
            .filter(|row| row.session.user_id == user_id)
            .map(|row| row.recipient.clone())
            .collect();
        // A key query reads in sort-key order.
        recipients.sort_by(|a, b| a.session_id.cmp(&b.session_id));
        Ok(recipients)
    }

    async fn account_page(
        &self,
        account_id: AccountId,
        start: Option<&ScanPosition>,
        limit: usize,
    ) -> Result<RecipientPage, PortError> {
        use std::ops::Bound;
        self.read_check("account_page")?;
        let rows = self.rows.lock().unwrap();
        let from = match start {
            Some(position) => Bound::Excluded(row_key(position.user_id, &position.session_id)),
            None => Bound::Unbounded,
        };
        Ok(page(
            rows.range((from, Bound::Unbounded)).map(|(_, row)| row),
            |recipient| recipient.account_id == account_id,
            limit,
        ))
    }

    async fn list(
        &self,
        limit: usize,
        after: Option<&SessionCursor>,
    ) -> Result<SessionPage, PortError> {
        use std::ops::Bound;
        let rows = self.rows.lock().unwrap();
        let start = match after {
            Some(cursor) => Bound::Excluded(row_key(cursor.user_id, &cursor.session_id)),
            None => Bound::Unbounded,
        };
        let mut remaining = rows.range((start, Bound::Unbounded));
        let sessions: Vec<Session> = remaining
            .by_ref()
            .take(limit)
            .map(|(_, row)| row.session.clone())
            .collect();
        let next = match (remaining.next(), sessions.last()) {
            (Some(_), Some(last)) => Some(SessionCursor {
                user_id: last.user_id,
                session_id: last.session_id.clone(),
            }),
            _ => None,
        };
        Ok(SessionPage { sessions, next })
    }

    async fn replace(&self, session: &Session) -> Result<Session, PortError> {
        let key = row_key(session.user_id, &session.session_id);
        let mut rows = self.rows.lock().unwrap();
        match rows.get_mut(&key) {
            Some(row) if row.session.queue.url == session.queue.url => {
                // As the DynamoDB adapter's update: the channel set is subscribe's to change.
                let channels = std::mem::take(&mut row.session.channels);
                *row = Row::from(session);
                row.session.channels = channels;
                Ok(row.session.clone())
            }
            _ => Err(PortError::new(
                PortErrorKind::ConditionFailed,
                "replace",
                session.session_id.as_str(),
                "the row was removed or replaced",
            )),
        }
    }

    async fn scan_page(
        &self,
        segment: u32,
        total_segments: u32,
        start: Option<&ScanPosition>,
        limit: usize,
    ) -> Result<RecipientPage, PortError> {
        use std::ops::Bound;
        self.read_check("scan_page")?;
        self.scan_pages.fetch_add(1, Ordering::Relaxed);
        let latency = self.scan_latency_micros.load(Ordering::Relaxed);
        if latency > 0 {
            tokio::time::sleep(Duration::from_micros(latency)).await;
        }
        let rows = self.rows.lock().unwrap();
        // The segment is a hash range: read from its start (or the resume point) to its end.
        let low = segment_start(segment, total_segments);
        let high = segment_start(segment + 1, total_segments);
        let from = match start {
            Some(position) => Bound::Excluded(row_key(position.user_id, &position.session_id)),
            None if low > u128::from(u64::MAX) => return Ok(RecipientPage::default()),
            None => Bound::Included((low as u64, None)),
        };
        let in_segment = rows
            .range((from, Bound::Unbounded))
            .take_while(|((hash, _), _)| u128::from(*hash) < high)
            .map(|(_, row)| row);
        Ok(page(in_segment, |_| true, limit))
    }

    async fn subscribe(
        &self,
        session: &Session,
        channels: &[ChannelName],
        at_most_before: usize,
        now: u64,
    ) -> Result<(), PortError> {
        self.write_check("subscribe")?;
        let mut rows = self.rows.lock().unwrap();
        let mut memberships = self.memberships.lock().unwrap();
        let Some(row) = rows.get_mut(&row_key(session.user_id, &session.session_id)) else {
            return Err(Self::condition_failed("subscribe", session, "no row"));
        };
        if row.session.queue.url != session.queue.url
            || row.session.ttl != session.ttl
            || row.session.ttl <= now
        {
            return Err(Self::condition_failed(
                "subscribe",
                session,
                "the row was replaced, renewed or has expired",
            ));
        }
        if row.session.channels.len() > at_most_before {
            return Err(Self::condition_failed(
                "subscribe",
                session,
                "the row holds too many channels",
            ));
        }
        for channel in channels {
            row.session.channels.insert(channel.clone());
            memberships.insert(
                (channel.clone(), session.user_id, session.session_id.clone()),
                Recipient::from(&row.session),
            );
        }
        Ok(())
    }

    async fn unsubscribe(&self, session: &Session, channel: &ChannelName) -> Result<(), PortError> {
        self.write_check("unsubscribe")?;
        let mut rows = self.rows.lock().unwrap();
        let mut memberships = self.memberships.lock().unwrap();
        match rows.get_mut(&row_key(session.user_id, &session.session_id)) {
            Some(row) if row.session.queue.url == session.queue.url => {
                row.session.channels.remove(channel);
                memberships.remove(&(channel.clone(), session.user_id, session.session_id.clone()));
                Ok(())
            }
            _ => Err(Self::condition_failed(
                "unsubscribe",
                session,
                "the row was removed or replaced",
            )),
        }
    }

    async fn channel_page(
        &self,
        channel: &ChannelName,
        start: Option<&ScanPosition>,
        limit: usize,
    ) -> Result<RecipientPage, PortError> {
        use std::ops::Bound;
        self.read_check("channel_page")?;
        self.channel_pages.fetch_add(1, Ordering::Relaxed);
        let latency = self.scan_latency_micros.load(Ordering::Relaxed);
        if latency > 0 {
            tokio::time::sleep(Duration::from_micros(latency)).await;
        }
        let memberships = self.memberships.lock().unwrap();
        let from = match start {
            Some(position) => Bound::Excluded((
                channel.clone(),
                position.user_id,
                position.session_id.clone(),
            )),
            None => Bound::Included((
                channel.clone(),
                UserId::try_from(0).expect("0 is an id"),
                SessionId::parse(" ").expect("the smallest session id"),
            )),
        };
        let limit = limit.max(1);
        let mut in_channel = memberships
            .range((from, Bound::Unbounded))
            .take_while(|((name, _, _), _)| name == channel)
            .map(|(_, recipient)| recipient);
        let recipients: Vec<Recipient> = in_channel.by_ref().take(limit).cloned().collect();
        let next = match recipients.last() {
            Some(last) if recipients.len() == limit => Some(ScanPosition {
                user_id: last.user_id,
                session_id: last.session_id.clone(),
            }),
            _ => None,
        };
        Ok(RecipientPage { recipients, next })
    }

    async fn count_channel(&self, channel: &ChannelName, now: u64) -> Result<u64, PortError> {
        self.read_check("count_channel")?;
        let memberships = self.memberships.lock().unwrap();
        Ok(memberships
            .iter()
            .filter(|((name, _, _), recipient)| name == channel && recipient.is_live(now))
            .count() as u64)
    }

    async fn refresh_memberships(&self, session: &Session) -> Result<(), PortError> {
        self.write_check("refresh_memberships")?;
        let mut memberships = self.memberships.lock().unwrap();
        for channel in &session.channels {
            if let Some(recipient) =
                memberships.get_mut(&(channel.clone(), session.user_id, session.session_id.clone()))
                && recipient.queue_url == session.queue.url
            {
                recipient.ttl = session.ttl;
                recipient.expires = session.credentials.expires;
            }
        }
        Ok(())
    }

    async fn remove_memberships(&self, session: &Session) -> Result<usize, PortError> {
        self.write_check("remove_memberships")?;
        let mut memberships = self.memberships.lock().unwrap();
        let mut removed = 0;
        for channel in &session.channels {
            let key = (channel.clone(), session.user_id, session.session_id.clone());
            if memberships
                .get(&key)
                .is_some_and(|recipient| recipient.queue_url == session.queue.url)
            {
                memberships.remove(&key);
                removed += 1;
            }
        }
        Ok(removed)
    }

    async fn estimated_count(&self) -> Result<Option<u64>, PortError> {
        Ok(Some(self.len() as u64))
    }
}
