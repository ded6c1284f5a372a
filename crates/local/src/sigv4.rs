//! The local stand-in for API Gateway's IAM auth: every request must carry a valid SigV4
//! signature made with the local access key pair.

use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use aws_smithy_types::date_time::{DateTime, Format};
use axum::body::{Body, to_bytes};
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::json;
use subtle::ConstantTimeEq;

/// The service name API Gateway signs for.
pub const SERVICE: &str = "execute-api";
/// How far a request's X-Amz-Date may be from now, as AWS allows.
pub const MAX_CLOCK_SKEW: Duration = Duration::from_secs(5 * 60);
/// Largest request body the check reads.
const MAX_BODY_BYTES: usize = 2 * 1024 * 1024;

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

fn parse_authorization(header: &str) -> Result<Authorization<'_>, String> {
    let rest = header
        .strip_prefix("AWS4-HMAC-SHA256 ")
        .ok_or("Authorization is not AWS4-HMAC-SHA256: sign the request with SigV4")?;
    let (mut credential, mut signed_headers, mut signature) = (None, None, None);
    for part in rest.split(',') {
        let part = part.trim();
        if let Some(value) = part.strip_prefix("Credential=") {
            credential = Some(value);
        } else if let Some(value) = part.strip_prefix("SignedHeaders=") {
            signed_headers = Some(value);
        } else if let Some(value) = part.strip_prefix("Signature=") {
            signature = Some(value);
        }
    }
    let credential = credential.ok_or("Authorization has no Credential")?;
    let scope: Vec<&str> = credential.split('/').collect();
    let [access_key, date, region, service, "aws4_request"] = scope[..] else {
        return Err("Authorization Credential is not key/date/region/service/aws4_request".into());
    };
    Ok(Authorization {
        access_key,
        date,
        region,
        service,
        signed_headers: signed_headers
            .ok_or("Authorization has no SignedHeaders")?
            .split(';')
            .collect(),
        signature: signature.ok_or("Authorization has no Signature")?,
    })
}

/// `20261123T055000Z` → a time.
fn parse_amz_date(value: &str) -> Option<SystemTime> {
    let b = value.as_bytes();
    if b.len() != 16 || b[8] != b'T' || b[15] != b'Z' {
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

/// Checks one request's signature; the error says what to fix.
pub fn verify(
    keys: &LocalKeys,
    method: &str,
    uri: &str,
    headers: &http::HeaderMap,
    body: &[u8],
    now: SystemTime,
) -> Result<(), String> {
    let header = headers
        .get(http::header::AUTHORIZATION)
        .ok_or("missing Authorization header: sign the request with SigV4 (scripts/call_gw does)")?
        .to_str()
        .map_err(|_| "Authorization header is not text")?;
    let authorization = parse_authorization(header)?;
    if authorization.access_key != keys.access_key {
        return Err(format!(
            "unknown access key {:?}: the local stack accepts only its own key pair",
            authorization.access_key
        ));
    }
    if authorization.service != SERVICE {
        return Err(format!(
            "signed for service {:?}; sign for {SERVICE:?}",
            authorization.service
        ));
    }
    let amz_date = headers
        .get("x-amz-date")
        .and_then(|value| value.to_str().ok())
        .ok_or("missing X-Amz-Date header")?;
    if !amz_date.starts_with(authorization.date) {
        return Err("X-Amz-Date does not match the credential scope's date".into());
    }
    let signed_at = parse_amz_date(amz_date).ok_or("X-Amz-Date is not YYYYMMDDTHHMMSSZ")?;
    let skew = now
        .duration_since(signed_at)
        .or_else(|_| signed_at.duration_since(now))
        .unwrap_or_default();
    if skew > MAX_CLOCK_SKEW {
        return Err(
            "request signature is too old or too far in the future (over 5 minutes)".into(),
        );
    }

    let mut signed = Vec::with_capacity(authorization.signed_headers.len());
    for name in &authorization.signed_headers {
        let value = headers
            .get(*name)
            .and_then(|value| value.to_str().ok())
            .ok_or_else(|| format!("signed header {name:?} is missing"))?;
        signed.push((*name, value));
    }
    let session_token = headers
        .get("x-amz-security-token")
        .and_then(|value| value.to_str().ok())
        .map(str::to_string);
    let identity = Credentials::new(
        &keys.access_key,
        &keys.secret_key,
        session_token,
        None,
        "local",
    )
    .into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(authorization.region)
        .name(SERVICE)
        .time(signed_at)
        .settings(SigningSettings::default())
        .build()
        .map_err(|error| format!("cannot check the signature: {error}"))?
        .into();
    let request = SignableRequest::new(method, uri, signed.into_iter(), SignableBody::Bytes(body))
        .map_err(|error| format!("cannot check the signature: {error}"))?;
    let expected = sign(request, &params)
        .map_err(|error| format!("cannot check the signature: {error}"))?
        .signature()
        .to_string();
    if bool::from(
        expected
            .as_bytes()
            .ct_eq(authorization.signature.as_bytes()),
    ) {
        Ok(())
    } else {
        Err("signature does not match: check the secret key and that the request was not changed after signing".into())
    }
}

fn forbidden(message: &str) -> Response {
    let body = axum::Json(json!({"success": false, "error": message}));
    (StatusCode::FORBIDDEN, body).into_response()
}

/// Axum middleware: a request with a missing or wrong signature gets a 403 that says why.
pub async fn require_signature(
    State(keys): State<LocalKeys>,
    request: Request,
    next: Next,
) -> Response {
    let (parts, body) = request.into_parts();
    let Ok(body) = to_bytes(body, MAX_BODY_BYTES).await else {
        return forbidden("request body is too large to check");
    };
    let uri = parts
        .uri
        .path_and_query()
        .map(http::uri::PathAndQuery::as_str)
        .unwrap_or("/");
    if let Err(problem) = verify(
        &keys,
        parts.method.as_str(),
        uri,
        &parts.headers,
        &body,
        SystemTime::now(),
    ) {
        tracing::warn!(method = %parts.method, path = parts.uri.path(), %problem, "request refused");
        return forbidden(&problem);
    }
    next.run(Request::from_parts(parts, Body::from(body))).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> LocalKeys {
        LocalKeys {
            access_key: "AKIDLOCAL".into(),
            secret_key: "local-secret".into(),
        }
    }

    /// Signs like a client does: host and x-amz-date, through aws-sigv4.
    fn signed_headers(
        method: &str,
        uri: &str,
        body: &[u8],
        secret: &str,
        at: SystemTime,
    ) -> http::HeaderMap {
        let identity = Credentials::new("AKIDLOCAL", secret, None, None, "test").into();
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region("us-east-1")
            .name(SERVICE)
            .time(at)
            .settings(SigningSettings::default())
            .build()
            .unwrap()
            .into();
        let full = format!("http://127.0.0.1:3000{uri}");
        let request = SignableRequest::new(
            method,
            full,
            [("host", "127.0.0.1:3000")].into_iter(),
            SignableBody::Bytes(body),
        )
        .unwrap();
        let (instructions, _) = sign(request, &params).unwrap().into_parts();
        let mut headers = http::HeaderMap::new();
        headers.insert("host", "127.0.0.1:3000".parse().unwrap());
        for (name, value) in instructions.headers() {
            headers.insert(
                http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                value.parse().unwrap(),
            );
        }
        headers
    }

    #[test]
    fn a_correctly_signed_request_passes() {
        let now = SystemTime::now();
        let uri = "/notify/user/200?message=Hello+User";
        let headers = signed_headers("GET", uri, b"", "local-secret", now);
        assert_eq!(verify(&keys(), "GET", uri, &headers, b"", now), Ok(()));
    }

    #[test]
    fn a_changed_path_query_or_body_fails() {
        let now = SystemTime::now();
        let uri = "/notify/user/200?message=Hello";
        let headers = signed_headers("POST", uri, b"{}", "local-secret", now);
        assert!(
            verify(
                &keys(),
                "POST",
                "/notify/user/201?message=Hello",
                &headers,
                b"{}",
                now
            )
            .is_err()
        );
        assert!(
            verify(
                &keys(),
                "POST",
                "/notify/user/200?message=Bye",
                &headers,
                b"{}",
                now
            )
            .is_err()
        );
        assert!(verify(&keys(), "POST", uri, &headers, b"{\"a\":1}", now).is_err());
        assert!(verify(&keys(), "GET", uri, &headers, b"{}", now).is_err());
    }

    #[test]
    fn a_wrong_secret_or_missing_signature_is_refused_with_a_reason() {
        let now = SystemTime::now();
        let headers = signed_headers("GET", "/x", b"", "not-the-secret", now);
        let error = verify(&keys(), "GET", "/x", &headers, b"", now).unwrap_err();
        assert!(error.contains("signature does not match"), "{error}");
        let error = verify(&keys(), "GET", "/x", &http::HeaderMap::new(), b"", now).unwrap_err();
        assert!(error.contains("missing Authorization"), "{error}");
    }

    #[test]
    fn an_old_signature_is_refused() {
        let then = SystemTime::now() - Duration::from_secs(600);
        let headers = signed_headers("GET", "/x", b"", "local-secret", then);
        let error = verify(&keys(), "GET", "/x", &headers, b"", SystemTime::now()).unwrap_err();
        assert!(error.contains("too old"), "{error}");
    }

    #[test]
    fn authorization_headers_parse_into_their_scope() {
        let parsed = parse_authorization(
            "AWS4-HMAC-SHA256 Credential=AK/20261123/us-east-1/execute-api/aws4_request, SignedHeaders=host;x-amz-date, Signature=abc",
        )
        .unwrap();
        assert_eq!(parsed.region, "us-east-1");
        assert_eq!(parsed.signed_headers, vec!["host", "x-amz-date"]);
        assert!(parse_authorization("Basic abc").is_err());
    }
}
