//! In-memory implementations of every port, for unit tests and benchmarks.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;

use crate::clock::Clock;
use crate::crypto::{SealedMessage, SessionCipher, SessionKey};
use crate::model::ids::{AccountId, SessionId, UserId};
use crate::model::message::MessageId;
use crate::model::recipient::{Recipient, RecipientPage, ScanPosition};
use crate::model::session::{Credentials, QueueRef, Session};
use crate::ports::{
    AsyncFunction, BatchEntry, FailedEntry, HistoryRow, HistoryStore, IdentityProvider, Invoker,
    QueueService, QueueSpec, SessionCursor, SessionPage, SessionStore,
};
use crate::ports::{HistoryCursor, HistoryEntry, HistoryPage, HistoryQuery, Marked};
use crate::ports::{PortError, PortErrorKind};

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

/// Sessions in a sorted map, in the order a DynamoDB scan reads them.
#[derive(Debug, Default)]
pub struct MemorySessionStore {
    rows: Mutex<BTreeMap<RowKey, Row>>,
    /// A delay per scan page, to imitate DynamoDB's latency in benchmarks.
    scan_latency_micros: AtomicU64,
    /// Scan pages read.
    scan_pages: AtomicU64,
    /// Reads fail with this kind while set (a throttled or broken table).
    failing_reads: Mutex<Option<PortErrorKind>>,
}

impl MemorySessionStore {
    /// Makes every read (get, the session queries, the scan) fail with `kind` until `None`.
    pub fn fail_reads(&self, kind: Option<PortErrorKind>) {
        *self.failing_reads.lock().unwrap() = kind;
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

    async fn replace(&self, session: &Session) -> Result<(), PortError> {
        let key = row_key(session.user_id, &session.session_id);
        let mut rows = self.rows.lock().unwrap();
        match rows.get_mut(&key) {
            Some(row) if row.session.queue.url == session.queue.url => {
                *row = Row::from(session);
                Ok(())
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

    async fn estimated_count(&self) -> Result<Option<u64>, PortError> {
        Ok(Some(self.len() as u64))
    }
}

/// A queue held in memory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemoryQueue {
    /// The `owner` tag.
    pub owner_identity_id: String,
    /// The retention asked for.
    pub retention_seconds: Option<u32>,
    /// Every message sent, in order.
    pub messages: Vec<SealedMessage>,
}

/// Queues in a map keyed by URL, with an optional per-call delay to imitate network latency.
#[derive(Debug, Default)]
pub struct MemoryQueues {
    queues: Mutex<HashMap<String, MemoryQueue>>,
    latency_micros: AtomicU64,
    calls: AtomicU64,
    clock: ClockCell,
    created: Mutex<HashMap<String, u64>>,
    failing_deletes: Mutex<HashSet<String>>,
    /// Entry ids the next send_batch reports as failed: (count, sender_fault).
    refuse_next: Mutex<Option<(usize, bool)>>,
    /// While set, every send_batch fails as a whole with this kind.
    failing_sends: Mutex<Option<PortErrorKind>>,
}

/// The clock that stamps queue creation times; the system clock unless a test sets one.
#[derive(Default)]
struct ClockCell(Option<Arc<dyn Clock>>);

impl std::fmt::Debug for ClockCell {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "ClockCell(set)"
        } else {
            "ClockCell(system)"
        })
    }
}

impl ClockCell {
    fn now(&self) -> u64 {
        match &self.0 {
            Some(clock) => clock.now(),
            None => crate::clock::SystemClock.now(),
        }
    }
}

impl MemoryQueues {
    /// Queues whose every call waits `latency` first (what SQS costs in-region).
    pub fn with_latency(latency: Duration) -> Self {
        let queues = Self::default();
        queues.set_latency(latency);
        queues
    }

    /// Changes the per-call delay (set up fast, then measure slow).
    pub fn set_latency(&self, latency: Duration) {
        self.latency_micros
            .store(latency.as_micros() as u64, Ordering::Relaxed);
    }

    /// Queues whose creation times come from `clock`.
    pub fn with_clock(clock: Arc<dyn Clock>) -> Self {
        Self {
            clock: ClockCell(Some(clock)),
            ..Self::default()
        }
    }

    /// Makes every delete of `url` fail (not as "already gone"), to test partial failures.
    pub fn fail_deletes_of(&self, url: &str) {
        self.failing_deletes.lock().unwrap().insert(url.to_string());
    }

    /// A copy of one queue.
    pub fn queue(&self, url: &str) -> Option<MemoryQueue> {
        self.queues.lock().unwrap().get(url).cloned()
    }

    /// Makes the next SendMessageBatch report its first `count` entries as failed, as SQS does
    /// for a partial failure; `sender_fault` says whether sending them again can help.
    pub fn refuse_next_entries(&self, count: usize, sender_fault: bool) {
        *self.refuse_next.lock().unwrap() = Some((count, sender_fault));
    }

    /// While `kind` is set, every SendMessageBatch fails as a whole with it (after the SDK's
    /// retries, as the port reports it); `None` recovers.
    pub fn fail_sends(&self, kind: Option<PortErrorKind>) {
        *self.failing_sends.lock().unwrap() = kind;
    }

    /// Every message in a queue, verified and decrypted with `key`, for tests.
    pub fn opened(&self, url: &str, key: &SessionKey) -> Vec<serde_json::Value> {
        let cipher = SessionCipher::new(key);
        self.queue(url)
            .map(|queue| queue.messages)
            .unwrap_or_default()
            .iter()
            .map(|message| {
                let plaintext = cipher
                    .open(&message.body, Some(&message.mac))
                    .expect("a message sealed with this key");
                serde_json::from_slice(&plaintext).expect("a JSON message")
            })
            .collect()
    }

    /// Number of queues.
    pub fn count(&self) -> usize {
        self.queues.lock().unwrap().len()
    }

    /// Number of calls made, of any kind.
    pub fn calls(&self) -> u64 {
        self.calls.load(Ordering::Relaxed)
    }

    async fn call(&self) {
        self.calls.fetch_add(1, Ordering::Relaxed);
        let micros = self.latency_micros.load(Ordering::Relaxed);
        if micros > 0 {
            tokio::time::sleep(Duration::from_micros(micros)).await;
        }
    }
}

#[async_trait]
impl QueueService for MemoryQueues {
    async fn create_queue(&self, spec: &QueueSpec) -> Result<QueueRef, PortError> {
        self.call().await;
        let url = format!("memory://queues/000000000000/{}", spec.name);
        let created = self.clock.now();
        self.created.lock().unwrap().insert(url.clone(), created);
        self.queues.lock().unwrap().insert(
            url.clone(),
            MemoryQueue {
                owner_identity_id: spec.owner_identity_id.clone(),
                retention_seconds: spec.retention_seconds,
                messages: Vec::new(),
            },
        );
        Ok(QueueRef {
            url,
            name: spec.name.clone(),
        })
    }

    async fn send_batch(
        &self,
        queue_url: &str,
        entries: &[BatchEntry],
    ) -> Result<Vec<FailedEntry>, PortError> {
        self.call().await;
        if let Some(kind) = *self.failing_sends.lock().unwrap() {
            return Err(PortError::new(
                kind,
                "SQS SendMessageBatch",
                queue_url,
                "injected failure",
            ));
        }
        let refused = self.refuse_next.lock().unwrap().take();
        let (count, sender_fault) = refused.unwrap_or((0, false));
        let (failed, accepted) = entries.split_at(count.min(entries.len()));
        match self.queues.lock().unwrap().get_mut(queue_url) {
            Some(queue) => {
                queue
                    .messages
                    .extend(accepted.iter().map(|entry| entry.message.clone()));
                Ok(failed
                    .iter()
                    .map(|entry| FailedEntry {
                        id: entry.id.clone(),
                        code: "InternalError".into(),
                        sender_fault,
                    })
                    .collect())
            }
            None => Err(queue_not_found("SQS SendMessageBatch", queue_url)),
        }
    }

    async fn delete_queue(&self, queue_url: &str) -> Result<(), PortError> {
        self.call().await;
        if self.failing_deletes.lock().unwrap().contains(queue_url) {
            return Err(PortError::new(
                PortErrorKind::Transient,
                "SQS DeleteQueue",
                queue_url,
                "injected failure",
            ));
        }
        match self.queues.lock().unwrap().remove(queue_url) {
            Some(_) => Ok(()),
            None => Err(queue_not_found("SQS DeleteQueue", queue_url)),
        }
    }

    async fn list_queues(&self, prefix: &str) -> Result<Vec<QueueRef>, PortError> {
        self.call().await;
        let queues = self.queues.lock().unwrap();
        let mut found: Vec<QueueRef> = queues
            .keys()
            .filter_map(|url| {
                let name = url.rsplit('/').next()?;
                name.starts_with(prefix).then(|| QueueRef {
                    url: url.clone(),
                    name: name.to_string(),
                })
            })
            .collect();
        found.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(found)
    }

    async fn created_at(&self, queue_url: &str) -> Result<u64, PortError> {
        self.call().await;
        if !self.queues.lock().unwrap().contains_key(queue_url) {
            return Err(queue_not_found("SQS GetQueueAttributes", queue_url));
        }
        Ok(self
            .created
            .lock()
            .unwrap()
            .get(queue_url)
            .copied()
            .unwrap_or(0))
    }
}

fn queue_not_found(operation: &'static str, url: &str) -> PortError {
    PortError::new(
        PortErrorKind::NotFound,
        operation,
        url,
        "queue does not exist",
    )
}

/// Identities in a set; credentials are counters so each issue differs.
pub struct MemoryIdentities {
    clock: Arc<dyn Clock>,
    credential_seconds: u64,
    /// Identity id → the developer login it was created with.
    identities: Mutex<HashMap<String, String>>,
    issued: AtomicU64,
    lookups: AtomicU64,
    fail_credentials: AtomicBool,
    delete_batches: Mutex<Vec<usize>>,
    unprocessed_once: Mutex<HashSet<String>>,
    fail_deletes: AtomicBool,
}

impl MemoryIdentities {
    /// Credentials issued by this provider last `credential_seconds` from the clock's now.
    pub fn new(clock: Arc<dyn Clock>, credential_seconds: u64) -> Self {
        Self {
            clock,
            credential_seconds,
            identities: Mutex::default(),
            issued: AtomicU64::new(0),
            lookups: AtomicU64::new(0),
            fail_credentials: AtomicBool::new(false),
            delete_batches: Mutex::default(),
            unprocessed_once: Mutex::default(),
            fail_deletes: AtomicBool::new(false),
        }
    }

    /// The next delete call that names `identity_id` reports it unprocessed (as Cognito does
    /// under load) instead of deleting it.
    pub fn leave_unprocessed_once(&self, identity_id: &str) {
        self.unprocessed_once
            .lock()
            .unwrap()
            .insert(identity_id.to_string());
    }

    /// Makes every delete call fail outright.
    pub fn fail_deletes(&self, fail: bool) {
        self.fail_deletes.store(fail, Ordering::SeqCst);
    }

    /// How many ids each delete call carried, in call order.
    pub fn delete_batches(&self) -> Vec<usize> {
        self.delete_batches.lock().unwrap().clone()
    }

    /// Makes every credentials call fail, to test clean-up after a failed create.
    pub fn fail_credentials(&self, fail: bool) {
        self.fail_credentials.store(fail, Ordering::SeqCst);
    }

    /// Whether the identity exists.
    pub fn exists(&self, identity_id: &str) -> bool {
        self.identities.lock().unwrap().contains_key(identity_id)
    }

    /// How many credentials calls had to look the developer login up (no login given).
    pub fn lookups(&self) -> u64 {
        self.lookups.load(Ordering::SeqCst)
    }

    /// Number of identities.
    pub fn count(&self) -> usize {
        self.identities.lock().unwrap().len()
    }
}

#[async_trait]
impl IdentityProvider for MemoryIdentities {
    async fn create_identity(&self, login: &str) -> Result<String, PortError> {
        let number = self.issued.fetch_add(1, Ordering::SeqCst);
        let id = format!("memory:identity-{number}");
        self.identities
            .lock()
            .unwrap()
            .insert(id.clone(), login.to_string());
        Ok(id)
    }

    async fn credentials(
        &self,
        identity_id: &str,
        login: Option<&str>,
        _queue: &QueueRef,
    ) -> Result<Credentials, PortError> {
        if login.is_none() {
            self.lookups.fetch_add(1, Ordering::SeqCst);
        }
        let known = self.identities.lock().unwrap().get(identity_id).cloned();
        // As Cognito: a login that is not the identity's own gets no token for it.
        let matches = known.is_some_and(|own| login.is_none_or(|given| given == own));
        if self.fail_credentials.load(Ordering::SeqCst) || !matches {
            return Err(PortError::new(
                PortErrorKind::Other,
                "credentials",
                identity_id,
                "refused",
            ));
        }
        let number = self.issued.fetch_add(1, Ordering::SeqCst);
        Ok(Credentials {
            access_key: format!("MEMORYKEY{number}"),
            secret_key: format!("memory-secret-{number}"),
            session_token: format!("memory-token-{number}"),
            expires: self.clock.now() + self.credential_seconds,
        })
    }

    async fn delete_identities(&self, identity_ids: &[String]) -> Result<Vec<String>, PortError> {
        self.delete_batches.lock().unwrap().push(identity_ids.len());
        if self.fail_deletes.load(Ordering::SeqCst) {
            return Err(PortError::new(
                PortErrorKind::Transient,
                "Cognito DeleteIdentities",
                format!("{} identities", identity_ids.len()),
                "injected failure",
            ));
        }
        let mut unprocessed_once = self.unprocessed_once.lock().unwrap();
        let mut identities = self.identities.lock().unwrap();
        let mut unprocessed = Vec::new();
        for id in identity_ids {
            if unprocessed_once.remove(id) {
                unprocessed.push(id.clone());
            } else {
                identities.remove(id);
            }
        }
        Ok(unprocessed)
    }
}

/// A read row's receipt: pending until it went out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ReadState {
    ReceiptPending,
    Receipted,
}

/// History rows in a map keyed like the table.
#[derive(Debug, Default)]
pub struct MemoryHistory {
    rows: Mutex<BTreeMap<(UserId, String), HistoryRow>>,
    calls: AtomicU64,
    /// Keys of the rows marked read; rewriting a row leaves it as it was, read or not.
    read: Mutex<HashMap<(UserId, String), ReadState>>,
    /// Rows the next write_batch leaves unprocessed, as DynamoDB does under throttling.
    unprocessed_next: Mutex<usize>,
    /// While set, every write_batch fails as a whole (throttled past the SDK's retries).
    failing_writes: AtomicBool,
}

impl MemoryHistory {
    /// Makes the next BatchWriteItem leave its first `count` rows unprocessed.
    pub fn leave_unprocessed_next(&self, count: usize) {
        *self.unprocessed_next.lock().unwrap() = count;
    }

    /// While `fail` is set, every write fails as throttled; `false` recovers.
    pub fn fail_writes(&self, fail: bool) {
        self.failing_writes.store(fail, Ordering::SeqCst);
    }

    /// Every row of a user, by message id.
    pub fn rows_of(&self, user_id: UserId) -> Vec<HistoryRow> {
        let rows = self.rows.lock().unwrap();
        rows.values()
            .filter(|row| row.user_id == user_id)
            .cloned()
            .collect()
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.rows.lock().unwrap().len()
    }

    /// True when there are no rows.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Number of write calls.
    pub fn calls(&self) -> u64 {
        self.calls.load(Ordering::Relaxed)
    }

    /// Whether a row is marked read.
    pub fn is_read(&self, user_id: UserId, message_id: &str) -> bool {
        let read = self.read.lock().unwrap();
        read.contains_key(&(user_id, message_id.to_string()))
    }

    /// Whether a row is read with its receipt still pending.
    pub fn receipt_pending(&self, user_id: UserId, message_id: &str) -> bool {
        let read = self.read.lock().unwrap();
        read.get(&(user_id, message_id.to_string())) == Some(&ReadState::ReceiptPending)
    }

    /// A user's live rows in `created` order, newest first, ties by message id descending (the
    /// order of the `created` index read backwards).
    fn newest_first(&self, user_id: UserId, now: u64) -> Vec<HistoryEntry> {
        let rows = self.rows.lock().unwrap();
        let read = self.read.lock().unwrap();
        let mut entries: Vec<HistoryEntry> = rows
            .values()
            .filter(|row| row.user_id == user_id && row.ttl > now)
            .map(|row| HistoryEntry {
                row: row.clone(),
                is_read: read.contains_key(&(row.user_id, row.message_id.clone())),
            })
            .collect();
        entries.sort_by(|a, b| {
            (b.row.created, &b.row.message_id).cmp(&(a.row.created, &a.row.message_id))
        });
        entries
    }
}

#[async_trait]
impl HistoryStore for MemoryHistory {
    async fn write_batch(&self, rows: &[HistoryRow]) -> Result<Vec<HistoryRow>, PortError> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        if self.failing_writes.load(Ordering::SeqCst) {
            return Err(PortError::new(
                PortErrorKind::Transient,
                "DynamoDB PutItem",
                "history",
                "injected throttling",
            ));
        }
        let skip = std::mem::take(&mut *self.unprocessed_next.lock().unwrap()).min(rows.len());
        let (unprocessed, rows) = rows.split_at(skip);
        let mut stored = self.rows.lock().unwrap();
        for row in rows {
            // Like the conditional PutItem: a row already written (and maybe read) is kept.
            stored
                .entry((row.user_id, row.message_id.clone()))
                .or_insert_with(|| row.clone());
        }
        Ok(unprocessed.to_vec())
    }

    async fn query(&self, user_id: UserId, query: &HistoryQuery) -> Result<HistoryPage, PortError> {
        let after = query
            .after
            .as_ref()
            .map(|cursor| (cursor.created, cursor.message_id.as_str().to_string()));
        let mut entries: Vec<HistoryEntry> = self
            .newest_first(user_id, query.now)
            .into_iter()
            .filter(|entry| (query.start..=query.end).contains(&entry.row.created))
            .filter(|entry| match &after {
                Some(after) => (entry.row.created, entry.row.message_id.clone()) < *after,
                None => true,
            })
            .take(query.limit + 1)
            .collect();
        let next = if entries.len() > query.limit {
            entries.truncate(query.limit);
            entries.last().map(|entry| HistoryCursor {
                created: entry.row.created,
                message_id: MessageId::parse(&entry.row.message_id)
                    .expect("memory rows hold valid ids"),
            })
        } else {
            None
        };
        Ok(HistoryPage { entries, next })
    }

    async fn mark_read(
        &self,
        user_id: UserId,
        message_id: &MessageId,
    ) -> Result<Marked, PortError> {
        let key = (user_id, message_id.as_str().to_string());
        if self.failing_writes.load(Ordering::SeqCst) {
            return Err(PortError::new(
                PortErrorKind::Transient,
                "DynamoDB UpdateItem",
                "history",
                "injected throttling",
            ));
        }
        let rows = self.rows.lock().unwrap();
        if !rows.contains_key(&key) {
            return Ok(Marked::Missing);
        }
        let mut read = self.read.lock().unwrap();
        Ok(match read.get(&key) {
            Some(ReadState::Receipted) => Marked::Before,
            _ => {
                read.insert(key, ReadState::ReceiptPending);
                Marked::Now
            }
        })
    }

    async fn receipt_sent(&self, user_id: UserId, message_id: &MessageId) -> Result<(), PortError> {
        let key = (user_id, message_id.as_str().to_string());
        if let Some(state) = self.read.lock().unwrap().get_mut(&key) {
            *state = ReadState::Receipted;
        }
        Ok(())
    }

    async fn unread_up_to(
        &self,
        user_id: UserId,
        created_up_to: u64,
        now: u64,
        limit: usize,
    ) -> Result<Vec<MessageId>, PortError> {
        let receipted = |entry: &HistoryEntry| {
            self.read
                .lock()
                .unwrap()
                .get(&(user_id, entry.row.message_id.clone()))
                == Some(&ReadState::Receipted)
        };
        Ok(self
            .newest_first(user_id, now)
            .into_iter()
            .filter(|entry| entry.row.created <= created_up_to && !receipted(entry))
            .filter_map(|entry| MessageId::parse(&entry.row.message_id).ok())
            .take(limit)
            .collect())
    }
}

/// Records async invocations instead of running them.
#[derive(Debug, Default)]
pub struct RecordingInvoker {
    invocations: Mutex<Vec<(AsyncFunction, Vec<u8>)>>,
    dead_letters: Mutex<Vec<(AsyncFunction, Vec<u8>, String)>>,
}

impl RecordingInvoker {
    /// The payloads handed to `function`, in order.
    pub fn payloads(&self, function: AsyncFunction) -> Vec<Vec<u8>> {
        let invocations = self.invocations.lock().unwrap();
        invocations
            .iter()
            .filter(|(called, _)| *called == function)
            .map(|(_, payload)| payload.clone())
            .collect()
    }

    /// The payloads dead-lettered for `function`, in order, with their reasons.
    pub fn dead_letters(&self, function: AsyncFunction) -> Vec<(Vec<u8>, String)> {
        let letters = self.dead_letters.lock().unwrap();
        letters
            .iter()
            .filter(|(called, _, _)| *called == function)
            .map(|(_, payload, reason)| (payload.clone(), reason.clone()))
            .collect()
    }
}

#[async_trait]
impl Invoker for RecordingInvoker {
    async fn invoke_async(
        &self,
        function: AsyncFunction,
        payload: Vec<u8>,
    ) -> Result<(), PortError> {
        self.invocations.lock().unwrap().push((function, payload));
        Ok(())
    }

    async fn dead_letter(
        &self,
        function: AsyncFunction,
        payload: Vec<u8>,
        reason: &str,
    ) -> Result<(), PortError> {
        self.dead_letters
            .lock()
            .unwrap()
            .push((function, payload, reason.to_string()));
        Ok(())
    }
}

/// A session with its own in-memory queue (named `q-<user>-<session>`), stored in `store`, whose
/// credentials expire at `expires`: the fixture unit tests and benchmarks share.
pub async fn seed_session(
    store: &MemorySessionStore,
    queues: &MemoryQueues,
    account: u64,
    user: u64,
    session_id: &str,
    expires: u64,
) -> Session {
    let queue = queues
        .create_queue(&QueueSpec {
            name: format!("q-{user}-{session_id}"),
            owner_identity_id: "i".into(),
            retention_seconds: None,
        })
        .await
        .expect("memory queues always create");
    let session = Session {
        account_id: AccountId::try_from(account).expect("a safe integer"),
        user_id: UserId::try_from(user).expect("a safe integer"),
        session_id: SessionId::parse(session_id).expect("a valid session id"),
        queue,
        identity_id: "i".into(),
        developer_login: None,
        aes_key: SessionKey::generate(),
        credentials: Credentials {
            access_key: "a".into(),
            secret_key: "s".into(),
            session_token: "t".into(),
            expires,
        },
        ttl: expires + 3_600,
        created: 0,
    };
    store
        .put(&session)
        .await
        .expect("memory store always writes");
    session
}
