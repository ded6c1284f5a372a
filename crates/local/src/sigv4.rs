//! The local stand-in for API Gateway's IAM auth: every request must carry a valid SigV4
//! signature made with the local access key pair.
//!
//! The check runs in this order, and the first problem found is the answer:
//!
//! 1. the headers alone (nothing of the body is read yet): one `Authorization:
//!    AWS4-HMAC-SHA256 …` header with the local access key, service `execute-api`, `SignedHeaders`
//!    that are lowercase, sorted, each named once, include `host` and `x-amz-date` and are all
//!    present; one `X-Amz-Date` within [`MAX_CLOCK_SKEW`] of now, either way, on the
//!    credential scope's day — a 403 naming what is wrong;
//! 2. the size: a declared `Content-Length` over [`MAX_BODY_BYTES`] is a 413 before any of the
//!    body is read; a body without one (chunked) is read up to the limit and is a 413 past it;
//! 3. the signature, over the method, path, query, every value of every signed header (joined
//!    with commas, trimmed, as SigV4 specifies) and the body's SHA-256 — a 403 when it differs.
//!
//! Answers are `{"success": false, "error": "..."}`; no answer or log line carries the secret key
//! or the signature.

use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use aws_smithy_types::date_time::{DateTime, Format};
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use serde_json::json;
use subtle::ConstantTimeEq;

/// The service name API Gateway signs for.
pub const SERVICE: &str = "execute-api";
/// How far a request's X-Amz-Date may be from now, before or after, as AWS allows.
pub const MAX_CLOCK_SKEW: Duration = Duration::from_secs(5 * 60);
/// Largest request body the check reads; a larger one is a 413.
pub const MAX_BODY_BYTES: usize = 2 * 1024 * 1024;
/// Headers every signature must cover: without them a signature could be replayed against
/// another host or at another time.
pub const REQUIRED_SIGNED_HEADERS: [&str; 2] = ["host", "x-amz-date"];

/// The access key pair the local stack accepts.
#[derive(Clone)]
pub struct LocalKeys {
    /// The access key id.
    pub access_key: String,
    /// The secret key.
    pub secret_key: String,
}

impl std::fmt::Debug for LocalKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalKeys")
            .field("access_key", &self.access_key)
            .finish_non_exhaustive()
    }
}

/// The parts of an `Authorization: AWS4-HMAC-SHA256 ...` header.
#[derive(Debug, PartialEq, Eq)]
struct Authorization<'a> {
    access_key: &'a str,
    date: &'a str,
    region: &'a str,
    service: &'a str,
    signed_headers: Vec<&'a str>,
    signature: &'a str,
}

/// A client-supplied value, quoted and cut short, for an error message.
fn shown(value: &str) -> String {
    const MAX: usize = 40;
    if value.chars().count() <= MAX {
        format!("{value:?}")
    } else {
        format!("{:?}…", value.chars().take(MAX).collect::<String>())
    }
}

fn parse_authorization(header: &str) -> Result<Authorization<'_>, String> {
    let rest = header
        .strip_prefix("AWS4-HMAC-SHA256 ")
        .ok_or("Authorization is not AWS4-HMAC-SHA256: sign the request with SigV4")?;
    let (mut credential, mut signed_headers, mut signature) = (None, None, None);
    for part in rest.split(',') {
        let part = part.trim();
        let (slot, value, name) = if let Some(value) = part.strip_prefix("Credential=") {
            (&mut credential, value, "Credential")
        } else if let Some(value) = part.strip_prefix("SignedHeaders=") {
            (&mut signed_headers, value, "SignedHeaders")
        } else if let Some(value) = part.strip_prefix("Signature=") {
            (&mut signature, value, "Signature")
        } else {
            return Err(format!(
                "Authorization has an unknown part {}: expected Credential=, SignedHeaders= and Signature=",
                shown(part)
            ));
        };
        if slot.replace(value).is_some() {
            return Err(format!("Authorization names {name} more than once"));
        }
    }
    let credential = credential.ok_or("Authorization has no Credential")?;
    let scope: Vec<&str> = credential.split('/').collect();
    let [access_key, date, region, service, "aws4_request"] = scope[..] else {
        return Err("Authorization Credential is not key/date/region/service/aws4_request".into());
    };
    if region.is_empty() {
        return Err("Authorization Credential names no region".into());
    }
    let signed_headers = signed_headers.ok_or("Authorization has no SignedHeaders")?;
    let signature = signature.ok_or("Authorization has no Signature")?;
    if signature.len() != 64
        || !signature
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return Err("Authorization Signature is not 64 lowercase hex digits".into());
    }
    Ok(Authorization {
        access_key,
        date,
        region,
        service,
        signed_headers: signed_headers.split(';').collect(),
        signature,
    })
}

/// A lowercase HTTP header name (RFC 9110 token characters).
fn is_lowercase_header_name(name: &str) -> bool {
    !name.is_empty()
        && name.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || b"!#$%&'*+-.^_`|~".contains(&b)
        })
}

/// SignedHeaders as SigV4 writes them: lowercase names, sorted, each once, covering
/// [`REQUIRED_SIGNED_HEADERS`] and never `authorization` itself.
fn check_signed_header_names(names: &[&str]) -> Result<(), String> {
    if let Some(bad) = names.iter().find(|name| !is_lowercase_header_name(name)) {
        return Err(format!(
            "SignedHeaders names {} which is not a lowercase header name",
            shown(bad)
        ));
    }
    if let Some(pair) = names.windows(2).find(|pair| pair[0] >= pair[1]) {
        return Err(format!(
            "SignedHeaders must be sorted and name each header once ({} then {})",
            shown(pair[0]),
            shown(pair[1])
        ));
    }
    let missing: Vec<&str> = REQUIRED_SIGNED_HEADERS
        .into_iter()
        .filter(|required| !names.contains(required))
        .collect();
    if !missing.is_empty() {
        return Err(format!(
            "SignedHeaders must include host and x-amz-date; missing: {}",
            missing.join(", ")
        ));
    }
    if names.contains(&"authorization") {
        return Err("SignedHeaders must not name authorization".into());
    }
    Ok(())
}

/// `20261123T055000Z` → a time.
fn parse_amz_date(value: &str) -> Option<SystemTime> {
    let b = value.as_bytes();
    if b.len() != 16
        || b[8] != b'T'
        || b[15] != b'Z'
        || !b[..8].iter().chain(&b[9..15]).all(u8::is_ascii_digit)
    {
        return None;
    }
    let rfc3339 = format!(
        "{}-{}-{}T{}:{}:{}Z",
        &value[0..4],
        &value[4..6],
        &value[6..8],
        &value[9..11],
        &value[11..13],
        &value[13..15]
    );
    DateTime::from_str(&rfc3339, Format::DateTime)
        .ok()
        .and_then(|time| SystemTime::try_from(time).ok())
}

/// What a request's headers claim about its signature, checked before the body is read.
#[derive(Debug)]
struct Claim<'a> {
    authorization: Authorization<'a>,
    signed_at: SystemTime,
    /// Every value of every signed header, in the order received.
    signed: Vec<(&'a str, &'a str)>,
}

/// The one value of a header that must appear exactly once.
fn single<'a>(headers: &'a http::HeaderMap, name: &str) -> Result<Option<&'a str>, String> {
    let mut values = headers.get_all(name).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(format!("more than one {name} header"));
    }
    value
        .to_str()
        .map(Some)
        .map_err(|_| format!("{name} header is not text"))
}

/// Step 1: everything the headers alone can tell, the error saying what to fix.
fn check_headers<'a>(
    keys: &LocalKeys,
    headers: &'a http::HeaderMap,
    now: SystemTime,
) -> Result<Claim<'a>, String> {
    let header = single(headers, "authorization")?.ok_or(
        "missing Authorization header: sign the request with SigV4 (scripts/call_gw does)",
    )?;
    let authorization = parse_authorization(header)?;
    if authorization.access_key != keys.access_key {
        return Err(format!(
            "unknown access key {}: the local stack accepts only its own key pair",
            shown(authorization.access_key)
        ));
    }
    if authorization.service != SERVICE {
        return Err(format!(
            "signed for service {}; sign for {SERVICE:?}",
            shown(authorization.service)
        ));
    }
    check_signed_header_names(&authorization.signed_headers)?;
    let amz_date = single(headers, "x-amz-date")?.ok_or("missing X-Amz-Date header")?;
    let signed_at = parse_amz_date(amz_date).ok_or("X-Amz-Date is not YYYYMMDDTHHMMSSZ")?;
    if amz_date[..8] != *authorization.date {
        return Err("X-Amz-Date does not match the credential scope's date".into());
    }
    match now.duration_since(signed_at) {
        Ok(age) if age > MAX_CLOCK_SKEW => {
            return Err("request signature is too old (signed over 5 minutes ago)".into());
        }
        Ok(_) => {}
        Err(ahead) if ahead.duration() > MAX_CLOCK_SKEW => {
            return Err(
                "request signature is from the future (over 5 minutes ahead): check the clock"
                    .into(),
            );
        }
        Err(_) => {}
    }
    let mut signed = Vec::with_capacity(authorization.signed_headers.len());
    for name in &authorization.signed_headers {
        let mut values = headers.get_all(*name).iter().peekable();
        if values.peek().is_none() {
            return Err(format!("signed header {} is missing", shown(name)));
        }
        for value in values {
            let value = value
                .to_str()
                .map_err(|_| format!("signed header {} is not text", shown(name)))?;
            signed.push((*name, value));
        }
    }
    Ok(Claim {
        authorization,
        signed_at,
        signed,
    })
}

/// Step 3: recomputes the signature over exactly the headers the client named.
fn check_signature(
    keys: &LocalKeys,
    claim: &Claim<'_>,
    method: &str,
    uri: &str,
    body: &[u8],
) -> Result<(), String> {
    // The session token is signed only when the client listed it, like any other header.
    let identity = Credentials::new(&keys.access_key, &keys.secret_key, None, None, "local").into();
    let mut settings = SigningSettings::default();
    // Sign exactly the headers the client named (the default leaves out user-agent and others).
    settings.excluded_headers = None;
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(claim.authorization.region)
        .name(SERVICE)
        .time(claim.signed_at)
        .settings(settings)
        .build()
        .map_err(|error| format!("cannot check the signature: {error}"))?
        .into();
    // `host` is among the signed headers (check_headers made sure), so the signer never has to
    // take it from the URI, which here has no authority.
    let request = SignableRequest::new(
        method,
        uri,
        claim.signed.iter().copied(),
        SignableBody::Bytes(body),
    )
    .map_err(|error| format!("cannot check the signature: {error}"))?;
    let expected = sign(request, &params)
        .map_err(|error| format!("cannot check the signature: {error}"))?
        .signature()
        .to_string();
    if bool::from(
        expected
            .as_bytes()
            .ct_eq(claim.authorization.signature.as_bytes()),
    ) {
        Ok(())
    } else {
        Err("signature does not match: check the secret key and that the request was not changed after signing".into())
    }
}

/// Checks one request's headers and signature over `body`; the error says what to fix.
pub fn verify(
    keys: &LocalKeys,
    method: &str,
    uri: &str,
    headers: &http::HeaderMap,
    body: &[u8],
    now: SystemTime,
) -> Result<(), String> {
    let claim = check_headers(keys, headers, now)?;
    check_signature(keys, &claim, method, uri, body)
}

/// A refusal: its status and what to fix.
type Refusal = (StatusCode, String);

/// Step 2a: a declared Content-Length, refused when over the limit.
fn check_declared_length(headers: &http::HeaderMap) -> Result<(), Refusal> {
    for value in headers.get_all(http::header::CONTENT_LENGTH) {
        let Some(length) = value.to_str().ok().and_then(|v| v.parse::<u64>().ok()) else {
            return Err((
                StatusCode::BAD_REQUEST,
                "Content-Length is not a number".into(),
            ));
        };
        if length > MAX_BODY_BYTES as u64 {
            return Err(too_large());
        }
    }
    Ok(())
}

fn too_large() -> Refusal {
    (
        StatusCode::PAYLOAD_TOO_LARGE,
        format!("request body is over the local stack's limit of {MAX_BODY_BYTES} bytes"),
    )
}

/// Step 2b: the body, read up to the limit and no further.
async fn read_body(body: Body) -> Result<Bytes, Refusal> {
    match Limited::new(body, MAX_BODY_BYTES).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(error) if error.is::<LengthLimitError>() => Err(too_large()),
        Err(_) => Err((
            StatusCode::BAD_REQUEST,
            "request body could not be read".into(),
        )),
    }
}

/// Steps 1 to 3 for one request: its body when it passes.
async fn check(
    keys: &LocalKeys,
    parts: &http::request::Parts,
    body: Body,
) -> Result<Bytes, Refusal> {
    let forbidden = |problem| (StatusCode::FORBIDDEN, problem);
    let claim = check_headers(keys, &parts.headers, SystemTime::now()).map_err(forbidden)?;
    check_declared_length(&parts.headers)?;
    let body = read_body(body).await?;
    let uri = parts
        .uri
        .path_and_query()
        .map(http::uri::PathAndQuery::as_str)
        .unwrap_or("/");
    check_signature(keys, &claim, parts.method.as_str(), uri, &body).map_err(forbidden)?;
    Ok(body)
}

/// Axum middleware: a request with a missing or wrong signature gets a 403 that says why, one
/// with a body over [`MAX_BODY_BYTES`] a 413.
pub async fn require_signature(
    State(keys): State<LocalKeys>,
    request: Request,
    next: Next,
) -> Response {
    let (parts, body) = request.into_parts();
    match check(&keys, &parts, body).await {
        Ok(body) => next.run(Request::from_parts(parts, Body::from(body))).await,
        Err((status, problem)) => {
            tracing::warn!(method = %parts.method, path = parts.uri.path(), %status, %problem, "request refused");
            let body = axum::Json(json!({"success": false, "error": problem}));
            (status, body).into_response()
        }
    }
}

#[cfg(test)]
mod tests;
