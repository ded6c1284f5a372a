//! The edge's extractors: a route's path and query parameters deserialize into its own structs
//! (`Path<SessionPath>`, `Query<HistoryQuery>`), and every rejection is the one [`ApiError`].
//!
//! Every query string is read by [`query_pairs`], so a rule about query strings as a whole (a
//! malformed one) is made there once for every route; a repeated name is refused before any
//! route by the router's middleware. Every route names the query parameters it takes, and any
//! other is a 400 naming it: an ignored parameter could be a target the caller meant.

use axum::extract::FromRequestParts;
use axum::extract::path::ErrorKind;
use axum::extract::rejection::PathRejection;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use super::ApiError;

/// A route's path parameters as its own struct; ids are validated while deserializing (the
/// struct's `TryFrom`), and a bad one is a 400 naming it.
pub struct Path<T>(pub T);

impl<T, S> FromRequestParts<S> for Path<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let axum::extract::Path(value) = axum::extract::Path::from_request_parts(parts, state)
            .await
            .map_err(ApiError::from)?;
        Ok(Self(value))
    }
}

impl From<PathRejection> for ApiError {
    fn from(rejection: PathRejection) -> Self {
        // A path struct's `TryFrom` error (an `IdError`, an `InvalidParameter`) arrives as
        // serde's custom message: answer with it alone, as the handlers did when they parsed.
        if let PathRejection::FailedToDeserializePathParams(error) = &rejection
            && let ErrorKind::Message(message) = error.kind()
        {
            return ApiError::bad_request(message.clone());
        }
        ApiError::new(rejection.status(), rejection.body_text())
    }
}

/// The names a route's query struct takes; any other name is refused.
pub trait QueryShape: DeserializeOwned {
    /// The names the route takes (a 400 names any other, and these).
    const NAMES: &'static [&'static str];
}

/// A route's query parameters as its own struct of raw values; the handler turns them into
/// typed values (each refusal naming its parameter).
pub struct Query<T>(pub T);

impl<T, S> FromRequestParts<S> for Query<T>
where
    T: QueryShape + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        query(parts.uri.query()).map(Self)
    }
}

/// Reads a query string (absent: no parameters) into a route's query struct.
pub fn query<T: QueryShape>(raw: Option<&str>) -> Result<T, ApiError> {
    let pairs = query_pairs(raw)?;
    refuse_unknown(&pairs, T::NAMES)?;
    let fields: Map<String, Value> = pairs
        .into_iter()
        .map(|(name, value)| (name, Value::String(value)))
        .collect();
    serde_json::from_value(Value::Object(fields))
        .map_err(|error| ApiError::bad_request(format!("malformed query string: {error}")))
}

/// The one query reader: a query string's parameters in order (absent: none); a malformed query
/// is a 400.
pub fn query_pairs(raw: Option<&str>) -> Result<Vec<(String, String)>, ApiError> {
    serde_urlencoded::from_str(raw.unwrap_or(""))
        .map_err(|error| ApiError::bad_request(format!("malformed query string: {error}")))
}

/// Refuses parameters the route does not know, naming them (sorted) and the ones it does.
fn refuse_unknown(pairs: &[(String, String)], allowed: &[&str]) -> Result<(), ApiError> {
    let mut unknown: Vec<&str> = pairs
        .iter()
        .map(|(name, _)| name.as_str())
        .filter(|name| !allowed.contains(name))
        .collect();
    if unknown.is_empty() {
        return Ok(());
    }
    unknown.sort_unstable();
    unknown.dedup();
    Err(ApiError::bad_request(unknown_names(
        "query parameter",
        &unknown,
        allowed,
    )))
}

/// "unknown query parameter x; this route takes a, b" (or "takes none").
fn unknown_names(what: &str, unknown: &[&str], allowed: &[&str]) -> String {
    let plural = if unknown.len() == 1 { "" } else { "s" };
    let takes = if allowed.is_empty() {
        "none".to_string()
    } else {
        allowed.join(", ")
    };
    format!(
        "unknown {what}{plural} {}; this route takes {takes}",
        unknown.join(", ")
    )
}

/// A route that takes no query parameters: any is refused.
#[derive(serde::Deserialize)]
pub struct NoQuery {}

impl QueryShape for NoQuery {
    const NAMES: &'static [&'static str] = &[];
}

/// A request body that is a JSON object of the keys a route takes (an empty body is an empty
/// object); any other key is a 400 naming it.
pub fn object_body(body: &[u8], allowed: &[&str]) -> Result<Map<String, Value>, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    let fields = match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(fields)) => fields,
        Ok(_) => return Err(ApiError::bad_request("the body must be a JSON object")),
        Err(error) => {
            return Err(ApiError::bad_request(format!(
                "the body is not valid JSON: {error}"
            )));
        }
    };
    let mut unknown: Vec<&str> = fields
        .keys()
        .map(String::as_str)
        .filter(|name| !allowed.contains(name))
        .collect();
    if !unknown.is_empty() {
        unknown.sort_unstable();
        return Err(ApiError::bad_request(unknown_names(
            "body key", &unknown, allowed,
        )));
    }
    Ok(fields)
}
