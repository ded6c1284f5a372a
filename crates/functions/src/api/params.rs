//! The edge's parsing: each route's query struct, and the parsers that turn its raw values (page
//! tokens, limits, times, id lists) into validated ones, so the domain only ever sees them typed.
//! Each refusal names the parameter.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sqs_push_core::history::read::PageRequest;
use sqs_push_core::history::receipts::{MAX_ASYNC_IDS, MAX_SYNC_IDS};
use sqs_push_core::model::ids::{IdError, MAX_SAFE_INTEGER, SessionId, UserId};
use sqs_push_core::model::message::MessageId;
use sqs_push_core::ports::{HistoryCursor, SessionCursor, TypeFilter};
use sqs_push_core::session::RETENTION_RANGE;

use super::ApiError;
use super::extract::QueryShape;

/// A query or body parameter that is not an id and is malformed; a 400 naming it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {name}: {reason}")]
pub struct InvalidParameter {
    /// The parameter as the API names it.
    pub name: &'static str,
    /// What is wrong with it.
    pub reason: String,
}

impl InvalidParameter {
    fn new(name: &'static str, reason: impl Into<String>) -> Self {
        Self {
            name,
            reason: reason.into(),
        }
    }
}

impl From<InvalidParameter> for ApiError {
    fn from(error: InvalidParameter) -> Self {
        ApiError::bad_request(error.to_string())
    }
}

/// The query of `GET /create/...` (and the keys of a `POST /create/...` body).
#[derive(Debug, Deserialize)]
pub struct CreateQuery {
    /// `MessageRetentionPeriod`: the queue's retention in seconds.
    #[serde(rename = "MessageRetentionPeriod")]
    pub retention: Option<String>,
    /// `channels`: channels to subscribe the session to, comma-separated.
    pub channels: Option<String>,
}

impl QueryShape for CreateQuery {
    const NAMES: &'static [&'static str] = &["MessageRetentionPeriod", "channels"];
}

/// The query of `GET /status`, a page of sessions.
#[derive(Debug, Deserialize)]
pub struct ListQuery {
    /// `limit`: the page size.
    pub limit: Option<String>,
    /// `next`: the token of the previous page.
    pub next: Option<String>,
}

impl QueryShape for ListQuery {
    const NAMES: &'static [&'static str] = &["limit", "next"];
}

/// The query of a single-channel subscribe: `presence=true` switches the channel's presence
/// events on.
#[derive(Debug, Default, Deserialize)]
pub struct SubscribeQuery {
    /// `presence`: `true` or `false`.
    pub presence: Option<String>,
}

impl QueryShape for SubscribeQuery {
    const NAMES: &'static [&'static str] = &["presence"];
}

/// `presence=true|false`.
pub fn presence_flag(raw: &str) -> Result<bool, ApiError> {
    match raw {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(ApiError::bad_request(format!(
            "invalid presence: must be true or false, not {raw:?}"
        ))),
    }
}

/// The query of `GET /messages/user/{userId}`; other names are refused.
#[derive(Debug, Deserialize)]
pub struct HistoryQuery {
    /// `start`: the earliest `created`, epoch seconds.
    pub start: Option<String>,
    /// `end`: the latest `created`, epoch seconds.
    pub end: Option<String>,
    /// `limit`: the page size.
    pub limit: Option<String>,
    /// `next`: the token of the previous page.
    pub next: Option<String>,
    /// `_type`: the message types to answer, comma-separated.
    #[serde(rename = "_type")]
    pub types: Option<String>,
}

impl QueryShape for HistoryQuery {
    const NAMES: &'static [&'static str] = HISTORY_PARAMS;
}

/// The query of the set-read routes; other names are refused.
#[derive(Debug, Deserialize)]
pub struct SetReadQuery {
    /// `async`: hand the work to the `history` function.
    #[serde(rename = "async")]
    pub handed_off: Option<String>,
}

impl QueryShape for SetReadQuery {
    const NAMES: &'static [&'static str] = SET_READ_PARAMS;
}

/// The query parameters of `GET /messages/user/{userId}`.
pub const HISTORY_PARAMS: &[&str] = &["start", "end", "limit", "next", "_type"];
/// The query parameters of the set-read routes.
pub const SET_READ_PARAMS: &[&str] = &["async"];

/// Page size when the caller names no `limit`, for every paged route.
pub const DEFAULT_LIMIT: usize = 50;
/// The largest `limit` of every paged route.
pub const MAX_LIMIT: usize = 1_000;
/// A page token longer than this cannot be one of ours.
const MAX_TOKEN_LEN: usize = 1_024;

/// The one `limit` parser: a whole number from 1 to [`MAX_LIMIT`], [`DEFAULT_LIMIT`] when
/// absent.
pub fn limit(raw: Option<&str>) -> Result<usize, InvalidParameter> {
    let Some(raw) = raw else {
        return Ok(DEFAULT_LIMIT);
    };
    raw.parse::<usize>()
        .ok()
        .filter(|limit| (1..=MAX_LIMIT).contains(limit))
        .ok_or_else(|| {
            InvalidParameter::new(
                "limit",
                format!("must be a whole number from 1 to {MAX_LIMIT}"),
            )
        })
}

/// The one page-token codec: base64url of a cursor's JSON. The token is opaque to callers;
/// anything this did not make is refused as `next`.
pub fn encode_token<T: Serialize>(cursor: &T) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(cursor).expect("a cursor serializes"))
}

/// Reads a token made by [`encode_token`].
pub fn decode_token<T: DeserializeOwned>(raw: &str) -> Result<T, InvalidParameter> {
    let invalid = || InvalidParameter::new("next", "is not a token from a previous page");
    if raw.len() > MAX_TOKEN_LEN {
        return Err(invalid());
    }
    let bytes = URL_SAFE_NO_PAD.decode(raw).map_err(|_| invalid())?;
    serde_json::from_slice(&bytes).map_err(|_| invalid())
}

/// A session listing's token: `[userId, "sessionId"]`.
pub fn session_token(cursor: &SessionCursor) -> String {
    encode_token(&(cursor.user_id.get(), cursor.session_id.as_str()))
}

/// The cursor in a session listing's token.
pub fn session_cursor(raw: &str) -> Result<SessionCursor, InvalidParameter> {
    let (user_id, session_id): (u64, String) = decode_token(raw)?;
    let invalid = |_| InvalidParameter::new("next", "is not a token from a previous page");
    Ok(SessionCursor {
        user_id: UserId::try_from(user_id).map_err(invalid)?,
        session_id: SessionId::parse(&session_id).map_err(invalid)?,
    })
}

/// A history page's token: the `created` index key of its last row (the route names the user).
#[derive(serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct HistoryTokenKey {
    created: u64,
    message_id: MessageId,
}

/// The `next` token of a history page.
pub fn history_token(cursor: &HistoryCursor) -> String {
    encode_token(&HistoryTokenKey {
        created: cursor.created,
        message_id: cursor.message_id.clone(),
    })
}

/// The cursor in a history page's token.
pub fn history_cursor(raw: &str) -> Result<HistoryCursor, InvalidParameter> {
    let key: HistoryTokenKey = decode_token(raw)?;
    if key.created > MAX_SAFE_INTEGER {
        return Err(InvalidParameter::new(
            "next",
            "is not a token from a previous page",
        ));
    }
    Ok(HistoryCursor {
        created: key.created,
        message_id: key.message_id,
    })
}

/// Digits after the point an epoch time may have (microseconds).
const MAX_FRACTION_DIGITS: usize = 6;

/// An epoch time as a caller writes it: whole seconds and an optional fraction, e.g.
/// `1795440869.93` (what Python's `time.time()` prints). Stored `created` values are whole
/// seconds, so a bound is rounded towards the inside of the range it bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct EpochTime {
    /// Whole seconds.
    pub seconds: u64,
    /// The fraction, in microseconds.
    pub micros: u32,
}

impl EpochTime {
    /// The latest whole second at or before it: `created <= floor(t)` is `created <= t`.
    pub fn floor(self) -> u64 {
        self.seconds
    }

    /// The earliest whole second at or after it: `created >= ceil(t)` is `created >= t`.
    pub fn ceil(self) -> u64 {
        self.seconds + u64::from(self.micros > 0)
    }
}

/// Epoch seconds: decimal digits without sign or leading zeros, optionally a point and more
/// digits (as many as Python's `time.time()` prints; kept to the microsecond, the rest cut
/// off as the original stack did); at most 2^53-1. No exponents, signs, spaces, `nan` or `inf`.
pub fn epoch_time(name: &'static str, raw: &str) -> Result<EpochTime, InvalidParameter> {
    let invalid = |reason: &str| InvalidParameter::new(name, reason);
    if raw.is_empty() {
        return Err(invalid("must not be empty"));
    }
    let (whole, fraction) = match raw.split_once('.') {
        Some((whole, fraction)) => (whole, Some(fraction)),
        None => (raw, None),
    };
    let digits = |part: &str| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit());
    if !digits(whole) || !fraction.is_none_or(digits) {
        return Err(invalid(
            "must be non-negative epoch seconds in decimal digits, optionally with a fraction \
             (1795440869 or 1795440869.93)",
        ));
    }
    if whole.len() > 1 && whole.starts_with('0') {
        return Err(invalid("must not have leading zeros"));
    }
    let micros = match fraction {
        Some(fraction) => {
            let kept = &fraction[..fraction.len().min(MAX_FRACTION_DIGITS)];
            format!("{kept:0<6}").parse::<u32>().expect("six digits")
        }
        None => 0,
    };
    let too_large = || invalid("must be at most 9007199254740991 (2^53-1)");
    let seconds = whole.parse::<u64>().map_err(|_| too_large())?;
    if seconds > MAX_SAFE_INTEGER || (seconds == MAX_SAFE_INTEGER && micros > 0) {
        return Err(too_large());
    }
    Ok(EpochTime { seconds, micros })
}

/// Most names a `_type` filter may list.
pub const MAX_TYPES: usize = 100;
/// Longest type name in a `_type` filter.
const MAX_TYPE_LEN: usize = 256;

/// The `_type` filter: comma-separated names, each trimmed of surrounding whitespace. An
/// empty name matches nothing, so `_type=` answers no rows, as the original stack did.
pub fn type_filter(raw: &str) -> Result<TypeFilter, InvalidParameter> {
    let types: Vec<String> = raw.split(',').map(|name| name.trim().to_string()).collect();
    if types.len() > MAX_TYPES {
        return Err(InvalidParameter::new(
            "_type",
            format!(
                "names {} types; at most {MAX_TYPES} are accepted",
                types.len()
            ),
        ));
    }
    if types.iter().any(|name| name.len() > MAX_TYPE_LEN) {
        return Err(InvalidParameter::new(
            "_type",
            format!("each type must be at most {MAX_TYPE_LEN} bytes"),
        ));
    }
    Ok(TypeFilter::new(types))
}

/// A history page request from `start`, `end`, `limit`, `next` and `_type`. A missing `start`
/// is the epoch, a missing `end` the far future; both may have a fraction (`start` rounds up,
/// `end` down, as `created` is whole seconds); a token must belong to the same range.
pub fn page_request(query: &HistoryQuery) -> Result<PageRequest, InvalidParameter> {
    let start = query
        .start
        .as_deref()
        .map(|raw| epoch_time("start", raw))
        .transpose()?;
    let end = query
        .end
        .as_deref()
        .map(|raw| epoch_time("end", raw))
        .transpose()?;
    if let (Some(start), Some(end)) = (start, end)
        && start > end
    {
        return Err(InvalidParameter::new("start", "must not be after end"));
    }
    let start = start.map_or(0, EpochTime::ceil);
    let end = end.map_or(MAX_SAFE_INTEGER, EpochTime::floor);
    let limit = limit(query.limit.as_deref())?;
    let after = query.next.as_deref().map(history_cursor).transpose()?;
    if let Some(cursor) = &after
        && !(start..=end).contains(&cursor.created)
    {
        return Err(InvalidParameter::new(
            "next",
            "belongs to another time range; pass the same start and end",
        ));
    }
    let types = query.types.as_deref().map(type_filter).transpose()?;
    Ok(PageRequest {
        start,
        end,
        limit,
        after,
        types,
    })
}

/// The optional `MessageRetentionPeriod` of a create call: whole seconds within SQS's bounds.
pub fn retention(raw: &str) -> Result<u32, InvalidParameter> {
    raw.parse::<u32>()
        .ok()
        .filter(|seconds| RETENTION_RANGE.contains(seconds))
        .ok_or_else(|| {
            InvalidParameter::new(
                "MessageRetentionPeriod",
                "must be whole seconds from 60 to 1209600 (14 days)",
            )
        })
}

/// Whether the query asks for `async`: `?async`, `?async=1` or `?async=true`.
pub fn handed_off(query: &SetReadQuery) -> Result<bool, InvalidParameter> {
    match query.handed_off.as_deref() {
        None | Some("0" | "false") => Ok(false),
        Some("" | "1" | "true") => Ok(true),
        Some(_) => Err(InvalidParameter::new(
            "async",
            "must be empty, 1, true, 0 or false",
        )),
    }
}

/// The ids of a comma-separated path segment; an empty item is a malformed id.
pub fn id_list(raw: &str) -> Result<Vec<MessageId>, IdError> {
    raw.split(',').map(MessageId::parse).collect()
}

/// The ids of a request body, which must be a JSON list of strings; whole numbers count as
/// their decimal text (`[123]` names `"123"`), as the original stack read them.
pub fn id_body(body: &[u8]) -> Result<Vec<MessageId>, ApiError> {
    let not_a_list = || {
        InvalidParameter::new(
            "messageIds",
            "the body must be a JSON list of message ids (strings or whole numbers)",
        )
    };
    let values: Vec<Value> = serde_json::from_slice(body).map_err(|_| not_a_list())?;
    values
        .iter()
        .map(|value| match value {
            Value::String(raw) => MessageId::parse(raw).map_err(ApiError::from),
            Value::Number(number) if number.is_u64() || number.is_i64() => {
                MessageId::parse(&number.to_string()).map_err(ApiError::from)
            }
            _ => Err(not_a_list().into()),
        })
        .collect()
}

/// Refuses more ids than one call may name: [`MAX_SYNC_IDS`], or [`MAX_ASYNC_IDS`] when the
/// work is handed off.
pub fn check_id_count(count: usize, handed_off: bool) -> Result<(), InvalidParameter> {
    let most = if handed_off {
        MAX_ASYNC_IDS
    } else {
        MAX_SYNC_IDS
    };
    if count > most {
        let hint = if handed_off { "" } else { "; use ?async" };
        return Err(InvalidParameter::new(
            "messageIds",
            format!("names {count} ids; at most {most} are accepted{hint}"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::extract;
    use super::*;

    fn id(raw: &str) -> MessageId {
        MessageId::parse(raw).unwrap()
    }

    fn request(query: &[(&str, &str)]) -> Result<PageRequest, InvalidParameter> {
        let encoded = serde_urlencoded::to_string(query).unwrap();
        let query: HistoryQuery = extract::query(Some(&encoded)).unwrap();
        page_request(&query)
    }

    #[test]
    fn malformed_page_parameters_name_their_field() {
        let cases: &[(&[(&str, &str)], &str)] = &[
            (&[("start", "-1")], "start"),
            (&[("start", "")], "start"),
            (&[("end", "1e5")], "end"),
            (&[("start", "10"), ("end", "9")], "start"),
            (&[("limit", "0")], "limit"),
            (&[("limit", "1001")], "limit"),
            (&[("limit", "ten")], "limit"),
            (&[("next", "not a token")], "next"),
            (&[("next", "e30")], "next"),
        ];
        for (query, field) in cases {
            assert_eq!(request(query).unwrap_err().name, *field, "{query:?}");
        }
        assert_eq!(request(&[]).unwrap().limit, DEFAULT_LIMIT);
        assert_eq!(request(&[("limit", "1000")]).unwrap().limit, MAX_LIMIT);
    }

    #[test]
    fn a_history_token_round_trips_and_must_lie_in_the_range() {
        let cursor = HistoryCursor {
            created: 103,
            message_id: id("m3"),
        };
        let token = history_token(&cursor);
        assert_eq!(history_cursor(&token), Ok(cursor));
        assert!(request(&[("next", &token), ("start", "100")]).is_ok());
        let error = request(&[("next", &token), ("start", "104")]).unwrap_err();
        assert_eq!(error.name, "next");
    }

    #[test]
    fn list_limits_and_tokens_that_are_not_ours_are_named() {
        assert_eq!(limit(Some("1")).unwrap(), 1);
        assert_eq!(limit(Some("1000")).unwrap(), 1000);
        for bad in ["0", "1001", "-1", "ten", ""] {
            assert_eq!(limit(Some(bad)).unwrap_err().name, "limit");
        }
        for bad in ["", "!!", "bm90IGpzb24", "WzEsMl0"] {
            assert_eq!(session_cursor(bad).unwrap_err().name, "next");
        }
        let cursor = SessionCursor {
            user_id: UserId::try_from(7).unwrap(),
            session_id: SessionId::parse("s").unwrap(),
        };
        assert_eq!(session_cursor(&session_token(&cursor)), Ok(cursor));
    }

    #[test]
    fn retention_outside_sqs_bounds_is_named() {
        assert_eq!(retention("60").unwrap(), 60);
        assert_eq!(retention("1209600").unwrap(), 1_209_600);
        for bad in ["59", "1209601", "-5", "x", ""] {
            assert_eq!(retention(bad).unwrap_err().name, "MessageRetentionPeriod");
        }
    }

    #[test]
    fn id_lists_and_bodies_are_validated() {
        assert_eq!(id_list("a,b").unwrap(), [id("a"), id("b")]);
        assert_eq!(id_list("a,,b").unwrap_err().field, "messageId");
        assert_eq!(id_body(br#"["a","b"]"#).unwrap(), [id("a"), id("b")]);
        assert_eq!(
            id_body(br#"[123, "b", -4]"#).unwrap(),
            [id("123"), id("b"), id("-4")]
        );
        for bad in [
            &br#"{"a":1}"#[..],
            br#"[1.5]"#,
            br#"[null]"#,
            b"not json",
            br#""a""#,
        ] {
            let error = id_body(bad).unwrap_err();
            assert!(
                error.message().starts_with("invalid messageIds"),
                "{error:?}"
            );
        }
        let error = id_body(br#"[""]"#).unwrap_err();
        assert!(
            error.message().starts_with("invalid messageId:"),
            "{error:?}"
        );
        assert!(check_id_count(MAX_SYNC_IDS, false).is_ok());
        assert_eq!(
            check_id_count(MAX_SYNC_IDS + 1, false).unwrap_err().name,
            "messageIds"
        );
        assert!(check_id_count(MAX_SYNC_IDS + 1, true).is_ok());
    }

    #[test]
    fn epoch_times_take_a_fraction_and_round_into_the_range() {
        let time = |raw| epoch_time("timestamp", raw);
        assert_eq!(time("1700000000").unwrap().floor(), 1_700_000_000);
        assert_eq!(time("1700000000").unwrap().ceil(), 1_700_000_000);
        let t = time("1795440869.93").unwrap();
        assert_eq!((t.seconds, t.micros), (1_795_440_869, 930_000));
        assert_eq!((t.floor(), t.ceil()), (1_795_440_869, 1_795_440_870));
        assert_eq!(time("0.000001").unwrap().ceil(), 1);
        assert_eq!(time("5.000000").unwrap().ceil(), 5);
        assert_eq!(time("9007199254740991").unwrap().floor(), MAX_SAFE_INTEGER);
        // Python 3's time.time() prints 7 digits: cut to the microsecond.
        let t = time("1795440869.9312345").unwrap();
        assert_eq!((t.seconds, t.micros), (1_795_440_869, 931_234));
        assert_eq!(time("5.0000009").unwrap().ceil(), 5);
        for bad in [
            "",
            "yesterday",
            "-1",
            "+1",
            "1e9",
            "1E9",
            "nan",
            "inf",
            "1.2.3",
            "1.",
            ".5",
            " 1",
            "01",
            "9007199254740992",
            "9007199254740991.5",
            "1,5",
            "0x10",
        ] {
            assert_eq!(time(bad).unwrap_err().name, "timestamp", "{bad:?}");
        }
    }

    #[test]
    fn decimal_bounds_round_inwards_and_types_are_trimmed() {
        let page = request(&[("start", "100.2"), ("end", "105.9")]).unwrap();
        assert_eq!((page.start, page.end), (101, 105));
        let page = request(&[("start", "100.2"), ("end", "100.7")]).unwrap();
        assert!(page.start > page.end, "an empty range, not an error");
        assert_eq!(
            request(&[("start", "100.7"), ("end", "100.2")])
                .unwrap_err()
                .name,
            "start"
        );
        let page = request(&[("_type", "type1, type2 ,type3")]).unwrap();
        assert_eq!(page.types.unwrap().types(), ["type1", "type2", "type3"]);
        assert_eq!(
            request(&[("_type", "")]).unwrap().types.unwrap().types(),
            [""]
        );
        let many = vec!["t"; MAX_TYPES + 1].join(",");
        assert_eq!(request(&[("_type", &many)]).unwrap_err().name, "_type");
        assert_eq!(request(&[]).unwrap().types, None);
    }

    #[test]
    fn unknown_parameters_are_named() {
        let error = extract::query::<HistoryQuery>(Some("start=1&foo=2&bar")).unwrap_err();
        assert!(error.message().contains("bar, foo"), "{error:?}");
        assert!(extract::query::<SetReadQuery>(Some("async")).is_ok());
    }
}
