//! The signature check's tests: signing like a client, then changing one thing.

use super::*;
use axum::Router;
use axum::http::HeaderValue;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use tower::ServiceExt;

const SECRET: &str = "local-secret";
const HOST: &str = "127.0.0.1:3000";

fn keys() -> LocalKeys {
    LocalKeys {
        access_key: "AKIDLOCAL".into(),
        secret_key: SECRET.into(),
    }
}

/// `2026-11-23T05:50:00.5Z` → `20261123T055000Z`.
fn amz_date(at: SystemTime) -> String {
    let secs = at.duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs();
    DateTime::from_secs(secs as i64)
        .fmt(Format::DateTime)
        .unwrap()
        .replace(['-', ':'], "")
}

/// Signs like a client does (aws-sigv4, default settings): host, x-amz-date and `extra`
/// (a name may repeat: every value is signed and sent).
fn sign_with(
    method: &str,
    uri: &str,
    extra: &[(&str, &str)],
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
    let full = format!("http://{HOST}{uri}");
    let request = SignableRequest::new(
        method,
        full,
        [("host", HOST)].into_iter().chain(extra.iter().copied()),
        SignableBody::Bytes(body),
    )
    .unwrap();
    let (instructions, _) = sign(request, &params).unwrap().into_parts();
    let mut headers = http::HeaderMap::new();
    headers.insert("host", HOST.parse().unwrap());
    for (name, value) in extra {
        headers.append(
            http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
            value.parse().unwrap(),
        );
    }
    for (name, value) in instructions.headers() {
        headers.insert(
            http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
            value.parse().unwrap(),
        );
    }
    headers
}

fn signed_headers(
    method: &str,
    uri: &str,
    body: &[u8],
    secret: &str,
    at: SystemTime,
) -> http::HeaderMap {
    sign_with(method, uri, &[], body, secret, at)
}

fn authorization_of(headers: &http::HeaderMap) -> String {
    headers["authorization"].to_str().unwrap().to_string()
}

fn set_authorization(headers: &mut http::HeaderMap, value: &str) {
    headers.insert("authorization", value.parse().unwrap());
}

/// A router that echoes the body, behind the check.
fn app() -> Router {
    Router::new()
        .fallback(|body: Bytes| async move { body })
        .layer(axum::middleware::from_fn_with_state(
            keys(),
            require_signature,
        ))
}

/// Runs one request through the check; the status and the body.
async fn answer_bytes(
    method: &str,
    uri: &str,
    headers: http::HeaderMap,
    body: Body,
) -> (StatusCode, Bytes) {
    let mut request = Request::builder()
        .method(method)
        .uri(uri)
        .body(body)
        .unwrap();
    *request.headers_mut() = headers;
    let response = app().oneshot(request).await.unwrap();
    let status = response.status();
    let body = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .unwrap();
    (status, body)
}

/// [`answer_bytes`] with the body as text.
async fn answer(
    method: &str,
    uri: &str,
    headers: http::HeaderMap,
    body: Body,
) -> (StatusCode, String) {
    let (status, body) = answer_bytes(method, uri, headers, body).await;
    (status, String::from_utf8_lossy(&body).into_owned())
}

/// The `error` of a `{"success": false, "error": ...}` answer.
fn error_of(text: &str) -> String {
    let value: serde_json::Value =
        serde_json::from_str(text).unwrap_or_else(|_| panic!("not JSON: {text}"));
    assert_eq!(value["success"], false, "{text}");
    value["error"]
        .as_str()
        .unwrap_or_else(|| panic!("no error: {text}"))
        .to_string()
}

#[test]
fn a_correctly_signed_request_passes() {
    let now = SystemTime::now();
    let uri = "/notify/user/200?message=Hello+User";
    let headers = signed_headers("GET", uri, b"", SECRET, now);
    assert_eq!(verify(&keys(), "GET", uri, &headers, b"", now), Ok(()));
}

#[test]
fn a_changed_path_query_or_body_fails() {
    let now = SystemTime::now();
    let uri = "/notify/user/200?message=Hello";
    let headers = signed_headers("POST", uri, b"{}", SECRET, now);
    for (method, uri, body) in [
        ("POST", "/notify/user/201?message=Hello", &b"{}"[..]),
        ("POST", "/notify/user/200?message=Bye", b"{}"),
        ("POST", uri, b"{\"a\":1}"),
        ("GET", uri, b"{}"),
    ] {
        let error = verify(&keys(), method, uri, &headers, body, now).unwrap_err();
        assert!(
            error.contains("signature does not match"),
            "{method} {uri}: {error}"
        );
    }
}

#[test]
fn every_value_of_a_repeated_signed_header_is_checked() {
    let now = SystemTime::now();
    let both = [("x-custom", "a"), ("x-custom", " b  c ")];
    // Both values signed and sent: canonical `x-custom:a,b c`.
    let headers = sign_with("GET", "/x", &both, b"", SECRET, now);
    assert_eq!(headers.get_all("x-custom").iter().count(), 2);
    assert_eq!(verify(&keys(), "GET", "/x", &headers, b"", now), Ok(()));
    // One value signed, a second one added on the way: refused.
    let mut headers = sign_with("GET", "/x", &both[..1], b"", SECRET, now);
    headers.append("x-custom", HeaderValue::from_static("evil"));
    let error = verify(&keys(), "GET", "/x", &headers, b"", now).unwrap_err();
    assert!(error.contains("signature does not match"), "{error}");
    // Two values signed, the second one dropped or changed on the way: refused.
    let signed = sign_with("GET", "/x", &both, b"", SECRET, now);
    for second in [None, Some("evil")] {
        let mut headers = signed.clone();
        headers.remove("x-custom");
        headers.append("x-custom", HeaderValue::from_static("a"));
        if let Some(value) = second {
            headers.append("x-custom", HeaderValue::from_static(value));
        }
        let error = verify(&keys(), "GET", "/x", &headers, b"", now).unwrap_err();
        assert!(
            error.contains("signature does not match"),
            "{second:?}: {error}"
        );
    }
}

#[test]
fn headers_a_default_signer_leaves_out_are_checked_when_listed() {
    // A signer that signs user-agent (botocore-style lists differ from aws-sigv4's).
    let now = SystemTime::now();
    let identity = Credentials::new("AKIDLOCAL", SECRET, None, None, "test").into();
    let mut settings = SigningSettings::default();
    settings.excluded_headers = None;
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region("eu-west-1")
        .name(SERVICE)
        .time(now)
        .settings(settings)
        .build()
        .unwrap()
        .into();
    let request = SignableRequest::new(
        "GET",
        format!("http://{HOST}/x"),
        [("host", HOST), ("user-agent", "curl/8")].into_iter(),
        SignableBody::Bytes(b""),
    )
    .unwrap();
    let (instructions, _) = sign(request, &params).unwrap().into_parts();
    let mut headers = http::HeaderMap::new();
    headers.insert("host", HOST.parse().unwrap());
    headers.insert("user-agent", "curl/8".parse().unwrap());
    for (name, value) in instructions.headers() {
        headers.insert(
            http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
            value.parse().unwrap(),
        );
    }
    assert!(authorization_of(&headers).contains("SignedHeaders=host;user-agent;x-amz-date"));
    assert_eq!(verify(&keys(), "GET", "/x", &headers, b"", now), Ok(()));
    headers.insert("user-agent", "curl/9".parse().unwrap());
    assert!(verify(&keys(), "GET", "/x", &headers, b"", now).is_err());
}

#[test]
fn the_clock_skew_is_checked_both_ways_up_to_five_minutes() {
    // A whole second, so X-Amz-Date (second resolution) says exactly the signing time.
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
    let skew = MAX_CLOCK_SKEW.as_secs();
    for (at, expected) in [
        (now - Duration::from_secs(skew), Ok(())),
        (now + Duration::from_secs(skew), Ok(())),
        (now - Duration::from_secs(skew - 1), Ok(())),
        (now + Duration::from_secs(skew - 1), Ok(())),
        (now - Duration::from_secs(skew + 1), Err("too old")),
        (now + Duration::from_secs(skew + 1), Err("from the future")),
        (now - Duration::from_secs(86_400), Err("too old")),
        (now + Duration::from_secs(86_400), Err("from the future")),
    ] {
        let headers = signed_headers("GET", "/x", b"", SECRET, at);
        let result = verify(&keys(), "GET", "/x", &headers, b"", now);
        match expected {
            Ok(()) => assert_eq!(result, Ok(()), "{at:?}"),
            Err(reason) => {
                let error = result.unwrap_err();
                assert!(error.contains(reason), "{at:?}: {error}");
            }
        }
    }
}

#[test]
fn authorization_headers_parse_into_their_scope() {
    let signature = "0".repeat(64);
    let header = format!(
        "AWS4-HMAC-SHA256 Credential=AK/20261123/us-east-1/execute-api/aws4_request, SignedHeaders=host;x-amz-date, Signature={signature}"
    );
    let parsed = parse_authorization(&header).unwrap();
    assert_eq!(parsed.region, "us-east-1");
    assert_eq!(parsed.date, "20261123");
    assert_eq!(parsed.signed_headers, vec!["host", "x-amz-date"]);
    assert!(parse_authorization("Basic abc").is_err());
}

/// What a refusal case does to a correctly signed `POST /notify/user/200?message=Hi` with body
/// `{}`: its headers, its URI and its body.
type Change = fn(&mut http::HeaderMap, &mut String, &mut Vec<u8>);

fn replace_in_authorization(headers: &mut http::HeaderMap, from: &str, to: &str) {
    let value = authorization_of(headers);
    assert!(value.contains(from), "{value} lacks {from}");
    set_authorization(headers, &value.replacen(from, to, 1));
}

/// Replaces SignedHeaders=... with `list`.
fn set_signed_headers(headers: &mut http::HeaderMap, list: &str) {
    let value = authorization_of(headers);
    let start = value.find("SignedHeaders=").unwrap() + "SignedHeaders=".len();
    let end = start + value[start..].find(',').unwrap();
    set_authorization(
        headers,
        &format!("{}{list}{}", &value[..start], &value[end..]),
    );
}

/// Runs a correctly signed POST changed by `change` through the check: it is answered with
/// `status` and an error naming `reason`, and never echoes the secret or the signature.
async fn refused(change: Change, status: StatusCode, reason: &str) {
    let uri = "/notify/user/200?message=Hi";
    let signed = signed_headers("POST", uri, b"{}", SECRET, SystemTime::now());
    let (mut headers, mut uri, mut body) = (signed.clone(), uri.to_string(), b"{}".to_vec());
    change(&mut headers, &mut uri, &mut body);
    let signature = authorization_of(&signed)
        .rsplit("Signature=")
        .next()
        .unwrap()
        .to_string();
    let (answered, text) = answer("POST", &uri, headers, Body::from(body)).await;
    assert_eq!(answered, status, "{text}");
    let error = error_of(&text);
    assert!(error.contains(reason), "{error}");
    assert!(
        !text.contains(SECRET) && !text.contains(&signature),
        "{text}"
    );
}

#[tokio::test]
async fn the_unchanged_request_passes_and_reaches_the_router_with_its_body() {
    let uri = "/notify/user/200?message=Hi";
    let signed = signed_headers("POST", uri, b"{}", SECRET, SystemTime::now());
    let (status, text) = answer("POST", uri, signed, Body::from("{}")).await;
    assert_eq!((status, text.as_str()), (StatusCode::OK, "{}"));
}

/// One test a refusal: `name: change => status, "what the error names";`.
macro_rules! refusals {
    ($($(#[$doc:meta])* $name:ident: $change:expr => $status:ident, $reason:expr;)*) => {
        $(
            $(#[$doc])*
            #[tokio::test]
            async fn $name() {
                refused($change, StatusCode::$status, $reason).await;
            }
        )*
    };
}

refusals! {
    /// no Authorization
    no_authorization: |h, _, _| {
        h.remove("authorization");
    } => FORBIDDEN, "missing Authorization header";
    /// two Authorization headers
    two_authorization_headers: |h, _, _| {
        let v = h["authorization"].clone();
        h.append("authorization", v);
    } => FORBIDDEN, "more than one authorization header";
    /// not SigV4
    not_sigv4: |h, _, _| set_authorization(h, "Basic QUtJRExPQ0FMOmxvY2FsLXNlY3JldA==") => FORBIDDEN, "not AWS4-HMAC-SHA256";
    /// no Credential
    no_credential: |h, _, _| {
        let v = authorization_of(h);
        let rest = &v[v.find("SignedHeaders=").unwrap()..];
        set_authorization(h, &format!("AWS4-HMAC-SHA256 {rest}"));
    } => FORBIDDEN, "no Credential";
    /// an unknown part
    an_unknown_part: |h, _, _| replace_in_authorization(h, "Credential=", "Cred=") => FORBIDDEN, "unknown part \"Cred=AKIDLOCAL/";
    /// Credential twice
    credential_twice: |h, _, _| {
        let v = authorization_of(h);
        let cred = v
            .split(", ")
            .next()
            .unwrap()
            .trim_start_matches("AWS4-HMAC-SHA256 ")
            .to_string();
        set_authorization(h, &format!("{v}, {cred}"));
    } => FORBIDDEN, "names Credential more than once";
    /// short credential scope
    short_credential_scope: |h, _, _| replace_in_authorization(h, "/aws4_request", "") => FORBIDDEN, "key/date/region/service/aws4_request";
    /// no region
    no_region: |h, _, _| replace_in_authorization(h, "/us-east-1/", "//") => FORBIDDEN, "names no region";
    /// no SignedHeaders
    no_signedheaders: |h, _, _| {
        let v = authorization_of(h);
        let start = v.find(", SignedHeaders=").unwrap();
        let end = v.find(", Signature=").unwrap();
        set_authorization(h, &format!("{}{}", &v[..start], &v[end..]));
    } => FORBIDDEN, "no SignedHeaders";
    /// no Signature
    no_signature: |h, _, _| {
        let v = authorization_of(h);
        let start = v.find(", Signature=").unwrap();
        set_authorization(h, &v[..start]);
    } => FORBIDDEN, "no Signature";
    /// signature not hex
    signature_not_hex: |h, _, _| {
        let v = authorization_of(h);
        let start = v.find("Signature=").unwrap() + 10;
        set_authorization(h, &format!("{}{}", &v[..start], "Z".repeat(64)));
    } => FORBIDDEN, "64 lowercase hex digits";
    /// unknown access key
    unknown_access_key: |h, _, _| {
        replace_in_authorization(h, "Credential=AKIDLOCAL/", "Credential=AKIDOTHER/");
    } => FORBIDDEN, "unknown access key \"AKIDOTHER\"";
    /// other service
    other_service: |h, _, _| replace_in_authorization(h, "/execute-api/", "/s3/") => FORBIDDEN, "signed for service \"s3\"";
    /// host not signed (panicked in the signer before)
    host_not_signed_panicked_in_the_signer_before: |h, _, _| set_signed_headers(h, "x-amz-date") => FORBIDDEN, "must include host and x-amz-date; missing: host";
    /// x-amz-date not signed
    x_amz_date_not_signed: |h, _, _| set_signed_headers(h, "host") => FORBIDDEN, "missing: x-amz-date";
    /// nothing signed
    nothing_signed: |h, _, _| set_signed_headers(h, "content-type") => FORBIDDEN, "missing: host, x-amz-date";
    /// SignedHeaders unsorted
    signedheaders_unsorted: |h, _, _| set_signed_headers(h, "x-amz-date;host") => FORBIDDEN, "must be sorted";
    /// SignedHeaders repeats a name
    signedheaders_repeats_a_name: |h, _, _| set_signed_headers(h, "host;host;x-amz-date") => FORBIDDEN, "name each header once";
    /// SignedHeaders in capitals
    signedheaders_in_capitals: |h, _, _| set_signed_headers(h, "Host;x-amz-date") => FORBIDDEN, "not a lowercase header name";
    /// SignedHeaders with an empty name
    signedheaders_with_an_empty_name: |h, _, _| set_signed_headers(h, "host;;x-amz-date") => FORBIDDEN, "\"\" which is not a lowercase header name";
    /// SignedHeaders names authorization
    signedheaders_names_authorization: |h, _, _| set_signed_headers(h, "authorization;host;x-amz-date") => FORBIDDEN, "must not name authorization";
    /// a signed header is absent
    a_signed_header_is_absent: |h, _, _| set_signed_headers(h, "host;x-amz-date;x-custom") => FORBIDDEN, "signed header \"x-custom\" is missing";
    /// a signed header is not text
    a_signed_header_is_not_text: |h, _, _| {
        set_signed_headers(h, "host;x-amz-date;x-custom");
        h.insert("x-custom", HeaderValue::from_bytes(b"caf\xe9").unwrap());
    } => FORBIDDEN, "signed header \"x-custom\" is not text";
    /// no X-Amz-Date
    no_x_amz_date: |h, _, _| {
        h.remove("x-amz-date");
    } => FORBIDDEN, "missing X-Amz-Date";
    /// two X-Amz-Date headers
    two_x_amz_date_headers: |h, _, _| {
        let v = h["x-amz-date"].clone();
        h.append("x-amz-date", v);
    } => FORBIDDEN, "more than one x-amz-date header";
    /// X-Amz-Date not a date
    x_amz_date_not_a_date: |h, _, _| {
        h.insert("x-amz-date", HeaderValue::from_static("2026-11-23T05:50Z"));
    } => FORBIDDEN, "not YYYYMMDDTHHMMSSZ";
    /// X-Amz-Date another day than the scope
    x_amz_date_another_day_than_the_scope: |h, _, _| {
        let v = authorization_of(h);
        let date = h["x-amz-date"].to_str().unwrap()[..8].to_string();
        set_authorization(h, &v.replacen(&format!("/{date}/"), "/20000101/", 1));
    } => FORBIDDEN, "credential scope's date";
    /// signed six minutes ago
    signed_six_minutes_ago: |h, _, _| {
        let at = SystemTime::now() - Duration::from_secs(360);
        *h = signed_headers("POST", "/notify/user/200?message=Hi", b"{}", SECRET, at);
    } => FORBIDDEN, "too old";
    /// signed six minutes ahead
    signed_six_minutes_ahead: |h, _, _| {
        let at = SystemTime::now() + Duration::from_secs(360);
        *h = signed_headers("POST", "/notify/user/200?message=Hi", b"{}", SECRET, at);
    } => FORBIDDEN, "from the future";
    /// wrong secret
    wrong_secret: |h, _, _| {
        *h = signed_headers(
            "POST",
            "/notify/user/200?message=Hi",
            b"{}",
            "not-the-secret",
            SystemTime::now(),
        );
    } => FORBIDDEN, "signature does not match";
    /// changed path
    changed_path: |_, u, _| {
        *u = "/notify/user/201?message=Hi".into();
    } => FORBIDDEN, "signature does not match";
    /// changed query
    changed_query: |_, u, _| {
        *u = "/notify/user/200?message=Hi&userId=5".into();
    } => FORBIDDEN, "signature does not match";
    /// changed body
    changed_body: |_, _, b| {
        *b = b"{\"message\":\"x\"}".to_vec();
    } => FORBIDDEN, "signature does not match";
    /// changed host
    changed_host: |h, _, _| {
        h.insert("host", HeaderValue::from_static("localhost:3000"));
    } => FORBIDDEN, "signature does not match";
    /// a second Host value
    a_second_host_value: |h, _, _| {
        h.append("host", HeaderValue::from_static("evil.example"));
    } => FORBIDDEN, "signature does not match";
    /// Content-Length over the limit
    content_length_over_the_limit: |h, _, _| {
        h.insert(
            "content-length",
            HeaderValue::from(MAX_BODY_BYTES as u64 + 1),
        );
    } => PAYLOAD_TOO_LARGE, "limit of 2097152 bytes";
    /// body over the limit
    body_over_the_limit: |_, _, b| {
        *b = vec![b' '; MAX_BODY_BYTES + 1];
    } => PAYLOAD_TOO_LARGE, "limit of 2097152 bytes";
    /// Content-Length not a number
    content_length_not_a_number: |h, _, _| {
        h.insert("content-length", HeaderValue::from_static("12abc"));
    } => BAD_REQUEST, "Content-Length is not a number";
}

/// A body that records whether anyone read it.
fn watched_body(chunks: usize, chunk: usize) -> (Body, Arc<AtomicBool>) {
    let read = Arc::new(AtomicBool::new(false));
    let flag = read.clone();
    let stream = futures::stream::iter((0..chunks).map(move |_| {
        flag.store(true, Ordering::SeqCst);
        Ok::<_, std::io::Error>(Bytes::from(vec![b'x'; chunk]))
    }));
    (Body::from_stream(stream), read)
}

#[tokio::test]
async fn a_content_length_over_the_limit_is_413_before_the_body_is_read() {
    let uri = "/notify";
    let mut headers = signed_headers("POST", uri, b"", SECRET, SystemTime::now());
    headers.insert("content-length", HeaderValue::from(3 * 1024 * 1024u64));
    let (body, read) = watched_body(3, 1024 * 1024);
    let (status, text) = answer("POST", uri, headers, body).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{text}");
    assert!(error_of(&text).contains("limit of 2097152 bytes"), "{text}");
    assert!(!read.load(Ordering::SeqCst), "the body was read");
}

#[tokio::test]
async fn a_chunked_body_over_the_limit_is_413() {
    let uri = "/notify";
    let headers = signed_headers("POST", uri, b"", SECRET, SystemTime::now());
    // No Content-Length: 64 chunks of 64 KiB, 4 MiB in all.
    let (body, _) = watched_body(64, 64 * 1024);
    let (status, text) = answer("POST", uri, headers, body).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{text}");
    assert!(error_of(&text).contains("limit of 2097152 bytes"), "{text}");
}

#[tokio::test]
async fn a_chunked_body_within_the_limit_is_checked_and_passed_on() {
    let uri = "/notify";
    let body = vec![b'x'; 3 * 64 * 1024];
    let headers = signed_headers("POST", uri, &body, SECRET, SystemTime::now());
    let (stream, _) = watched_body(3, 64 * 1024);
    let (status, text) = answer("POST", uri, headers, stream).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(text.as_bytes(), &body[..]);
}

#[tokio::test]
async fn an_unsigned_large_body_is_refused_before_it_is_read() {
    let mut headers = http::HeaderMap::new();
    headers.insert("content-length", HeaderValue::from(3 * 1024 * 1024u64));
    let (body, read) = watched_body(3, 1024 * 1024);
    let (status, text) = answer("POST", "/notify", headers, body).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{text}");
    assert!(error_of(&text).contains("missing Authorization"), "{text}");
    assert!(!read.load(Ordering::SeqCst), "the body was read");
}

mod properties;
