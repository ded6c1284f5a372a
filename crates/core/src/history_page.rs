//! Reading a user's history a page at a time: a validated time range, page size and opaque
//! page token, answered newest first from the `created` index.

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};

use crate::clock::Clock;
use crate::error::PortError;
use crate::ids::{IdError, MAX_SAFE_INTEGER, UserId, parse_safe_integer};
use crate::message::MessageId;
use crate::ports::{HistoryCursor, HistoryPage, HistoryQuery, HistoryStore};

/// Rows per page when the caller names no `limit`.
pub const DEFAULT_LIMIT: usize = 50;
/// The largest `limit` accepted.
pub const MAX_LIMIT: usize = 1_000;
/// A page token longer than this cannot be one of ours.
const MAX_TOKEN_LEN: usize = 1_024;

/// A page of history as a caller asks for it, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageRequest {
    /// Earliest `created`, inclusive, epoch seconds.
    pub start: u64,
    /// Latest `created`, inclusive, epoch seconds.
    pub end: u64,
    /// Rows per page, 1..=[`MAX_LIMIT`].
    pub limit: usize,
    /// Where the previous page ended.
    pub after: Option<HistoryCursor>,
}

impl PageRequest {
    /// Validates the raw `start`, `end`, `limit` and `next` parameters; each error names its
    /// parameter. A missing `start` is the epoch, a missing `end` the far future.
    pub fn parse(
        start: Option<&str>,
        end: Option<&str>,
        limit: Option<&str>,
        next: Option<&str>,
    ) -> Result<Self, IdError> {
        let start = start
            .map(|raw| parse_safe_integer("start", raw))
            .transpose()?
            .unwrap_or(0);
        let end = end
            .map(|raw| parse_safe_integer("end", raw))
            .transpose()?
            .unwrap_or(MAX_SAFE_INTEGER);
        if start > end {
            return Err(IdError {
                field: "start",
                reason: "must not be after end".to_string(),
            });
        }
        let limit = match limit {
            None => DEFAULT_LIMIT,
            Some(raw) => match parse_safe_integer("limit", raw)? {
                value if (1..=MAX_LIMIT as u64).contains(&value) => value as usize,
                _ => {
                    return Err(IdError {
                        field: "limit",
                        reason: format!("must be from 1 to {MAX_LIMIT}"),
                    });
                }
            },
        };
        let after = next.map(decode_token).transpose()?;
        if let Some(cursor) = &after
            && !(start..=end).contains(&cursor.created)
        {
            return Err(IdError {
                field: "next",
                reason: "belongs to another time range; pass the same start and end".to_string(),
            });
        }
        Ok(Self {
            start,
            end,
            limit,
            after,
        })
    }
}

/// The token's JSON: the `created` index key of the page's last row, less the user id (the
/// route names the user).
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct TokenKey {
    created: u64,
    message_id: MessageId,
}

/// The opaque `next` token for a cursor: base64url of the key's JSON.
pub fn encode_token(cursor: &HistoryCursor) -> String {
    let key = TokenKey {
        created: cursor.created,
        message_id: cursor.message_id.clone(),
    };
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(&key).expect("a token key serializes"))
}

/// The cursor in a `next` token; anything that [`encode_token`] did not make is refused.
pub fn decode_token(raw: &str) -> Result<HistoryCursor, IdError> {
    let invalid = || IdError {
        field: "next",
        reason: "is not a token from a previous page".to_string(),
    };
    if raw.len() > MAX_TOKEN_LEN {
        return Err(invalid());
    }
    let bytes = URL_SAFE_NO_PAD.decode(raw).map_err(|_| invalid())?;
    let key: TokenKey = serde_json::from_slice(&bytes).map_err(|_| invalid())?;
    if key.created > MAX_SAFE_INTEGER {
        return Err(invalid());
    }
    Ok(HistoryCursor {
        created: key.created,
        message_id: key.message_id,
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
    use crate::clock::ManualClock;
    use crate::memory::MemoryHistory;
    use crate::ports::HistoryRow;

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

    fn request(query: &[(&str, &str)]) -> Result<PageRequest, IdError> {
        let get = |name: &str| query.iter().find(|(n, _)| *n == name).map(|(_, v)| *v);
        PageRequest::parse(get("start"), get("end"), get("limit"), get("next"))
    }

    #[tokio::test]
    async fn pages_run_newest_first_and_the_last_page_has_no_next() {
        let (_, reader) = reader().await;
        let mut pages = Vec::new();
        let mut next: Option<String> = None;
        loop {
            let mut query = vec![("limit", "3")];
            if let Some(token) = &next {
                query.push(("next", token));
            }
            let page = reader
                .page(user(USER), &request(&query).unwrap())
                .await
                .unwrap();
            pages.push(ids(&page).join(","));
            match page.next {
                Some(cursor) => next = Some(encode_token(&cursor)),
                None => break,
            }
        }
        assert_eq!(pages, ["m7,m6,m5", "m4,m3,m2", "m1"]);
    }

    #[tokio::test]
    async fn a_time_range_is_inclusive_and_an_exact_fit_has_no_next() {
        let (_, reader) = reader().await;
        let request = request(&[("start", "102"), ("end", "104"), ("limit", "3")]).unwrap();
        let page = reader.page(user(USER), &request).await.unwrap();
        assert_eq!(ids(&page), ["m4", "m3", "m2"]);
        assert_eq!(page.next, None);
    }

    #[tokio::test]
    async fn expired_rows_are_left_out_and_new_rows_are_unread() {
        let (_, reader) = reader().await;
        let page = reader
            .page(user(USER), &request(&[]).unwrap())
            .await
            .unwrap();
        assert_eq!(page.entries.len(), 7);
        assert!(page.entries.iter().all(|e| !e.is_read));
    }

    #[test]
    fn malformed_parameters_name_their_field() {
        let cases: &[(&[(&str, &str)], &str)] = &[
            (&[("start", "-1")], "start"),
            (&[("start", "")], "start"),
            (&[("end", "1.5")], "end"),
            (&[("start", "10"), ("end", "9")], "start"),
            (&[("limit", "0")], "limit"),
            (&[("limit", "1001")], "limit"),
            (&[("limit", "ten")], "limit"),
            (&[("next", "not a token")], "next"),
            (&[("next", "e30")], "next"),
        ];
        for (query, field) in cases {
            assert_eq!(request(query).unwrap_err().field, *field, "{query:?}");
        }
        assert_eq!(request(&[]).unwrap().limit, DEFAULT_LIMIT);
        assert_eq!(request(&[("limit", "1000")]).unwrap().limit, MAX_LIMIT);
    }

    #[test]
    fn a_token_round_trips_and_must_lie_in_the_range() {
        let cursor = HistoryCursor {
            created: 103,
            message_id: MessageId::parse("m3").unwrap(),
        };
        let token = encode_token(&cursor);
        assert_eq!(decode_token(&token), Ok(cursor));
        assert!(request(&[("next", &token), ("start", "100")]).is_ok());
        let error = request(&[("next", &token), ("start", "104")]).unwrap_err();
        assert_eq!(error.field, "next");
    }
}
