//! Reading a user's history a page at a time: a time range, page size, an optional filter on
//! the message's `_type` and the cursor of the previous page, answered newest first from the
//! `created` index.
//!
//! The type filter is applied here, over the store's pages: the stored row keeps the message as
//! JSON text, so the table has no `_type` attribute to filter on. A filtered page reads at most
//! [`FILTER_STORE_PAGES`] store pages; when that budget runs out first the page may hold fewer
//! than `limit` rows (even none) and `next` continues where the reading stopped.

use std::sync::Arc;

use crate::clock::Clock;
use crate::model::ids::UserId;
use crate::model::message::MessageId;
use crate::ports::{
    HistoryCursor, HistoryEntry, HistoryPage, HistoryQuery, HistoryStore, PortError, PortErrorKind,
    TypeFilter,
};

/// Most store pages one filtered history page reads.
pub const FILTER_STORE_PAGES: usize = 10;
/// Rows per store page while filtering (at least the page's `limit` + 1).
const FILTER_STORE_LIMIT: usize = 200;

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
    /// Keep only messages of these types; `None` keeps every row.
    pub types: Option<TypeFilter>,
}

/// The index key of an entry, as a cursor.
fn cursor_of(entry: &HistoryEntry) -> Result<HistoryCursor, PortError> {
    let message_id = MessageId::parse(&entry.row.message_id).map_err(|_| {
        PortError::new(
            PortErrorKind::Other,
            "history read",
            "history",
            "a row has a malformed messageId",
        )
    })?;
    Ok(HistoryCursor {
        created: entry.row.created,
        message_id,
    })
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

    /// One page, newest first; `next` is set only when more rows follow (or, filtered, when
    /// the read budget ran out before the range did).
    pub async fn page(
        &self,
        user_id: UserId,
        request: &PageRequest,
    ) -> Result<HistoryPage, PortError> {
        if request.start > request.end {
            // A range like start=5.2&end=5.8 holds no whole second.
            return Ok(HistoryPage::default());
        }
        let page = match &request.types {
            None => {
                let query = HistoryQuery {
                    start: request.start,
                    end: request.end,
                    limit: request.limit,
                    after: request.after.clone(),
                    now: self.clock.now(),
                };
                self.store.query(user_id, &query).await?
            }
            Some(types) => self.filtered(user_id, request, types).await?,
        };
        tracing::debug!(
            user_id = %user_id,
            rows = page.entries.len(),
            more = page.next.is_some(),
            "history page read"
        );
        Ok(page)
    }

    /// A page of the rows `types` keeps: store pages are read until one match more than
    /// `limit` shows that another page follows, the range ends, or the budget is spent.
    async fn filtered(
        &self,
        user_id: UserId,
        request: &PageRequest,
        types: &TypeFilter,
    ) -> Result<HistoryPage, PortError> {
        let now = self.clock.now();
        let mut entries: Vec<HistoryEntry> = Vec::new();
        let mut after = request.after.clone();
        for _ in 0..FILTER_STORE_PAGES {
            let query = HistoryQuery {
                start: request.start,
                end: request.end,
                limit: FILTER_STORE_LIMIT.max(request.limit + 1),
                after: after.take(),
                now,
            };
            let page = self.store.query(user_id, &query).await?;
            for entry in page.entries {
                if !types.matches(&entry.row) {
                    continue;
                }
                if entries.len() == request.limit {
                    // One match beyond the page: the page ends at its last row.
                    let last = entries.last().expect("limit is at least 1");
                    let next = Some(cursor_of(last)?);
                    return Ok(HistoryPage { entries, next });
                }
                entries.push(entry);
            }
            match page.next {
                Some(cursor) => after = Some(cursor),
                None => {
                    return Ok(HistoryPage {
                        entries,
                        next: None,
                    });
                }
            }
        }
        // Budget spent: continue after the last row read, matched or not.
        Ok(HistoryPage {
            entries,
            next: after,
        })
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
            types: None,
        }
    }

    fn typed(user_id: u64, id: &str, created: u64, kind: Option<&str>) -> HistoryRow {
        let mut message = serde_json::json!({"messageId": id});
        if let Some(kind) = kind {
            message["_type"] = kind.into();
        }
        HistoryRow {
            message: message.to_string(),
            ..row(user_id, id, created)
        }
    }

    /// Every page of a filtered read, as id lists.
    async fn filtered_pages(reader: &HistoryReader, types: &[&str], limit: usize) -> Vec<String> {
        let mut pages = Vec::new();
        let mut after = None;
        loop {
            let request = PageRequest {
                types: Some(TypeFilter::new(
                    types.iter().map(|t| (*t).to_string()).collect(),
                )),
                ..request(0, u64::MAX, limit, after.take())
            };
            let page = reader.page(user(USER), &request).await.unwrap();
            pages.push(ids(&page).join(","));
            match page.next {
                Some(cursor) => after = Some(cursor),
                None => return pages,
            }
            assert!(pages.len() < 100, "does not end");
        }
    }

    #[tokio::test]
    async fn a_type_filter_keeps_only_those_types_and_pages_end_without_next() {
        let store = Arc::new(MemoryHistory::default());
        let kinds = [Some("a"), None, Some("b"), Some("c"), Some("a"), None];
        let rows: Vec<HistoryRow> = kinds
            .iter()
            .enumerate()
            .map(|(n, kind)| typed(USER, &format!("m{n}"), 100 + n as u64, *kind))
            .chain([typed(USER + 1, "other", 100, Some("a"))])
            .collect();
        store.write_batch(&rows).await.unwrap();
        let reader = HistoryReader::new(store, Arc::new(ManualClock::at(500)));
        assert_eq!(filtered_pages(&reader, &["a", "b"], 50).await, ["m4,m2,m0"]);
        assert_eq!(
            filtered_pages(&reader, &["a", "b"], 1).await,
            ["m4", "m2", "m0"]
        );
        assert_eq!(filtered_pages(&reader, &["c"], 1).await, ["m3"]);
        assert_eq!(filtered_pages(&reader, &["nosuch"], 5).await, [""]);
        assert_eq!(filtered_pages(&reader, &[""], 5).await, [""]);
    }

    #[tokio::test]
    async fn a_filtered_read_is_bounded_and_continues_with_next() {
        let store = Arc::new(MemoryHistory::default());
        let total = FILTER_STORE_LIMIT * FILTER_STORE_PAGES + 5;
        let rows: Vec<HistoryRow> = (0..total)
            .map(|n| {
                let kind = if n == 0 { Some("rare") } else { Some("common") };
                typed(USER, &format!("m{n:05}"), 100 + n as u64, kind)
            })
            .collect();
        for chunk in rows.chunks(25) {
            store.write_batch(chunk).await.unwrap();
        }
        let reader = HistoryReader::new(store, Arc::new(ManualClock::at(500)));
        // The oldest row is the only match: the first call runs out of budget, the second finds it.
        assert_eq!(filtered_pages(&reader, &["rare"], 10).await, ["", "m00000"]);
    }

    #[tokio::test]
    async fn an_empty_range_reads_nothing() {
        let (_, reader) = reader().await;
        let page = reader
            .page(user(USER), &request(105, 104, 3, None))
            .await
            .unwrap();
        assert_eq!(page, HistoryPage::default());
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
