//! The edge's extractors: a route's path and query parameters deserialize into its own structs
//! (`Path<SessionPath>`, `Query<HistoryQuery>`), and every rejection is the one [`ApiError`].
//!
//! Every query string is read by [`query_pairs`], so a rule about query strings as a whole (a
//! malformed one, a repeated name) is made there once for every route.

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

/// What a route's query struct says about names it does not declare.
pub trait QueryShape: DeserializeOwned {
    /// The names the route takes when any other name is refused (a 400 naming the others and
    /// these); `None` when other names are ignored.
    const ONLY: Option<&'static [&'static str]> = None;
}

/// A route's query parameters as its own struct of raw values; the handler turns them into
/// typed values (each refusal naming its parameter). When a name is repeated the last value is
/// taken.
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
    if let Some(allowed) = T::ONLY {
        refuse_unknown(&pairs, allowed)?;
    }
    // Later values of a repeated name replace earlier ones, as the map's inserts do.
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
    let plural = if unknown.len() == 1 { "" } else { "s" };
    Err(ApiError::bad_request(format!(
        "unknown query parameter{plural} {}; this route takes {}",
        unknown.join(", "),
        allowed.join(", ")
    )))
}

/// A route that reads no query parameters: any are ignored.
#[derive(serde::Deserialize)]
pub struct NoQuery {}

impl QueryShape for NoQuery {}
