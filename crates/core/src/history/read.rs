//! Reading a user's history a page at a time: a time range, page size and the cursor of the
//! previous page, answered newest first from the `created` index.

use std::sync::Arc;

use crate::clock::Clock;
use crate::model::ids::UserId;
use crate::ports::{HistoryCursor, HistoryPage, HistoryQuery, HistoryStore, PortError};

/// A page of history as a caller asks for it, validated at the edge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageRequest {
    /// Earliest `created`, inclusive, epoch seconds.
    pub start: u64,
    /// Latest `created`, inclusive, epoch seconds.
    pub end: u64,
    /// Rows per page.
    pub limit: usize,
    /// Where the previous page ended.
    pub after: Option<HistoryCursor>,
}

/// Reads pages of a user's history.
#[derive(Clone)]
pub struct HistoryReader {
    store: Arc<dyn HistoryStore>,
    clock: Arc<dyn Clock>,
}

impl HistoryReader {
    /// Reads `store`; rows whose `ttl` has passed by `clock` are left out even before the
    /// table's TTL deletes them (that can take days).
    pub fn new(store: Arc<dyn HistoryStore>, clock: Arc<dyn Clock>) -> Self {
        Self { store, clock }
    }

    /// One page, newest first; `next` is set only when more rows follow.
    pub async fn page(
        &self,
        user_id: UserId,
        request: &PageRequest,
    ) -> Result<HistoryPage, PortError> {
        let query = HistoryQuery {
            start: request.start,
            end: request.end,
            limit: request.limit,
            after: request.after.clone(),
            now: self.clock.now(),
        };
        let page = self.store.query(user_id, &query).await?;
        tracing::debug!(
            user_id = %user_id,
            rows = page.entries.len(),
            more = page.next.is_some(),
            "history page read"
        );
        Ok(page)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::HistoryRow;
    use crate::testing::ManualClock;
    use crate::testing::memory::MemoryHistory;

    const USER: u64 = 200;

    fn user(id: u64) -> UserId {
        UserId::try_from(id).unwrap()
    }

    fn row(user_id: u64, id: &str, created: u64) -> HistoryRow {
        HistoryRow {
            user_id: user(user_id),
            message_id: id.to_string(),
            created,
            ttl: created + 1_000,
            message: format!("{{\"messageId\":\"{id}\"}}"),
        }
    }

    /// Rows m1..m7 created at 101..107 for the user, one row for someone else, one expired.
    async fn reader() -> (Arc<MemoryHistory>, HistoryReader) {
        let store = Arc::new(MemoryHistory::default());
        let mut rows: Vec<HistoryRow> = (1..=7)
            .map(|n| row(USER, &format!("m{n}"), 100 + n))
            .collect();
        rows.push(row(USER + 1, "other", 104));
        let mut expired = row(USER, "old", 50);
        expired.ttl = 60;
        rows.push(expired);
        store.write_batch(&rows).await.unwrap();
        let reader = HistoryReader::new(store.clone(), Arc::new(ManualClock::at(500)));
        (store, reader)
    }

    fn ids(page: &HistoryPage) -> Vec<&str> {
        page.entries
            .iter()
            .map(|e| e.row.message_id.as_str())
            .collect()
    }

    fn request(start: u64, end: u64, limit: usize, after: Option<HistoryCursor>) -> PageRequest {
        PageRequest {
            start,
            end,
            limit,
            after,
        }
    }

    #[tokio::test]
    async fn pages_run_newest_first_and_the_last_page_has_no_next() {
        let (_, reader) = reader().await;
        let mut pages = Vec::new();
        let mut next: Option<HistoryCursor> = None;
        loop {
            let page = reader
                .page(user(USER), &request(0, u64::MAX, 3, next.take()))
                .await
                .unwrap();
            pages.push(ids(&page).join(","));
            match page.next {
                Some(cursor) => next = Some(cursor),
                None => break,
            }
        }
        assert_eq!(pages, ["m7,m6,m5", "m4,m3,m2", "m1"]);
    }

    #[tokio::test]
    async fn a_time_range_is_inclusive_and_an_exact_fit_has_no_next() {
        let (_, reader) = reader().await;
        let request = request(102, 104, 3, None);
        let page = reader.page(user(USER), &request).await.unwrap();
        assert_eq!(ids(&page), ["m4", "m3", "m2"]);
        assert_eq!(page.next, None);
    }

    #[tokio::test]
    async fn expired_rows_are_left_out_and_new_rows_are_unread() {
        let (_, reader) = reader().await;
        let page = reader
            .page(user(USER), &request(0, u64::MAX, 50, None))
            .await
            .unwrap();
        assert_eq!(page.entries.len(), 7);
        assert!(page.entries.iter().all(|e| !e.is_read));
    }
}
