//! Properties of the signature check over arbitrary and signed input.

use super::*;
use proptest::prelude::*;

/// Cases per run of each property; a failure prints its minimal input (no regression
/// files are written into the crate).
const ARBITRARY_CASES: u32 = 1000;
const SIGNED_CASES: u32 = 500;

fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

fn hex64() -> impl Strategy<Value = String> {
    "[0-9a-f]{64}"
}

/// Bytes a header value may hold (HeaderValue::from_bytes accepts them): tab, visible
/// ASCII and space, and obs-text.
fn value_bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(
        prop_oneof![Just(b'\t'), 0x20u8..0x7f, 0x80u8..=0xff],
        0..max,
    )
}

fn pick(options: &[&str]) -> prop::sample::Select<String> {
    let options: Vec<String> = options
        .iter()
        .map(std::string::ToString::to_string)
        .collect();
    prop::sample::select(options)
}

/// Mostly `good`, sometimes one of `bad`: most cases get past the first checks.
fn mostly(good: &str, bad: &[&str]) -> impl Strategy<Value = String> + use<> {
    prop_oneof![4 => Just(good.to_string()), 1 => pick(bad)]
}

/// A SignedHeaders list: often a valid one, often not.
fn signed_list() -> impl Strategy<Value = String> {
    let names = prop::collection::vec(
        prop_oneof![
            pick(&[
                "host",
                "x-amz-date",
                "authorization",
                "content-type",
                "x-custom",
                "Host",
                "",
                "x-amz-security-token",
                "user-agent",
                "content-length",
            ]),
            "[a-z-]{1,10}",
        ],
        0..5,
    )
    .prop_map(|names| names.join(";"));
    prop_oneof![
        3 => Just("host;x-amz-date".to_string()),
        2 => Just("content-type;host;x-amz-date".to_string()),
        2 => Just("host;x-amz-date;x-custom".to_string()),
        // Near misses: a required header left out (this used to panic in the signer).
        2 => pick(&["x-amz-date", "content-type;x-amz-date", "host", "x-amz-date;x-custom"]),
        3 => names,
    ]
}

/// An Authorization header: garbage, or the SigV4 shape with each part right or wrong.
fn authorization(today: String) -> impl Strategy<Value = Vec<u8>> {
    let structured = (
        mostly("AWS4-HMAC-SHA256 ", &["AWS4-HMAC-SHA256", "aws4-hmac-sha256 ", "Basic ", ""]),
        mostly("AKIDLOCAL", &["", "AKIDOTHER", "AKIDLOCAL/x"]),
        prop_oneof![4 => Just(today), 1 => pick(&["", "20000101", "2026/11", "99999999"])],
        mostly("us-east-1", &["", "eu-west-1", "x y", "é"]),
        mostly("execute-api", &["s3", ""]),
        mostly("aws4_request", &["", "aws4_request/more"]),
        signed_list(),
        prop_oneof![
            4 => hex64(),
            1 => pick(&["", "zz"]),
            1 => "[0-9a-f]{63}",
            1 => "[0-9a-fA-F]{64,65}",
        ],
        mostly("", &[", Foo=bar", ", Signature=00", ",,", ", SignedHeaders=host"]),
        pick(&[", ", ",", " , "]),
    )
        .prop_map(
            |(prefix, key, date, region, service, end, signed, signature, extra, sep)| {
                format!(
                    "{prefix}Credential={key}/{date}/{region}/{service}/{end}{sep}SignedHeaders={signed}{sep}Signature={signature}{extra}"
                )
                .into_bytes()
            },
        );
    prop_oneof![1 => value_bytes(120), 6 => structured]
}

/// An X-Amz-Date: now, a little or far off, or not a date.
fn amz_dates(now: SystemTime) -> impl Strategy<Value = Vec<u8>> {
    let at = |offset: i64| {
        let at = if offset < 0 {
            now - Duration::from_secs(offset.unsigned_abs())
        } else {
            now + Duration::from_secs(offset as u64)
        };
        amz_date(at).into_bytes()
    };
    let off: Vec<Vec<u8>> = [-301, 301, -86_400, 86_400 * 365]
        .into_iter()
        .map(at)
        .chain(
            [
                "",
                "20261123T055000",
                "2026-11-23T05:50:00Z",
                "99999999T999999Z",
                "00000000T000000Z",
                "20261323T255960Z",
            ]
            .map(|s| s.as_bytes().to_vec()),
        )
        .collect();
    prop_oneof![
        6 => prop::sample::select(vec![at(0), at(-299), at(299)]),
        2 => prop::sample::select(off),
        1 => value_bytes(20),
    ]
}

#[derive(Debug, Clone)]
struct Arbitrary {
    method: String,
    uri: String,
    headers: Vec<(String, Vec<u8>)>,
    body: Vec<u8>,
}

/// `value` under `name` none, one (mostly) or two times.
fn times(
    name: &'static str,
    value: BoxedStrategy<Vec<u8>>,
) -> impl Strategy<Value = Vec<(String, Vec<u8>)>> {
    prop_oneof![
        1 => Just(vec![]),
        8 => value.clone().prop_map(move |v| vec![(name.to_string(), v)]),
        1 => (value.clone(), value).prop_map(move |(a, b)| vec![(name.to_string(), a), (name.to_string(), b)]),
    ]
}

fn arbitrary_request() -> impl Strategy<Value = Arbitrary> {
    let now = SystemTime::now();
    let today = amz_date(now)[..8].to_string();
    let host = prop_oneof![
        8 => Just(HOST.as_bytes().to_vec()),
        1 => pick(&["", "localhost", "[::1]:3000"]).prop_map(String::into_bytes),
        1 => value_bytes(30),
    ];
    let content_length = prop_oneof![
        4 => Just(vec![]),
        1 => pick(&["0", "2097153", "99999999999999999999999"]).prop_map(|v| vec![("content-length".to_string(), v.into_bytes())]),
        1 => "[0-9]{1,8}".prop_map(|v| vec![("content-length".to_string(), v.into_bytes())]),
        1 => value_bytes(8).prop_map(|v| vec![("content-length".to_string(), v)]),
    ];
    let extra = prop::collection::vec(
        (
            prop_oneof![
                pick(&[
                    "x-custom",
                    "content-type",
                    "x-amz-security-token",
                    "user-agent",
                    "transfer-encoding"
                ]),
                "[a-z][a-z0-9-]{0,15}",
            ],
            value_bytes(30),
        ),
        0..4,
    );
    (
        pick(&[
            "GET", "POST", "HEAD", "PUT", "DELETE", "PATCH", "OPTIONS", "BREW",
        ]),
        pick(&[
            "/",
            "/notify",
            "/create/1/2/s",
            "/notify/user/200?message=Hi",
            "/status/1/2/%2F",
            "/x?a=%FF&&=",
            "/a/../b/./c",
        ]),
        times("authorization", authorization(today).boxed()),
        times("x-amz-date", amz_dates(now).boxed()),
        times("host", host.boxed()),
        content_length,
        extra,
        prop::collection::vec(any::<u8>(), 0..64),
    )
        .prop_map(
            |(method, uri, auth, date, host, length, extra, body)| Arbitrary {
                method,
                uri,
                headers: [auth, date, host, length, extra].concat(),
                body,
            },
        )
}

fn header_map(headers: &[(String, Vec<u8>)]) -> http::HeaderMap {
    let mut map = http::HeaderMap::new();
    for (name, value) in headers {
        map.append(
            http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_bytes(value).unwrap(),
        );
    }
    map
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
}

/// What a correctly signed request may have done to it on the way.
#[derive(Debug, Clone, Copy)]
enum OnTheWay {
    Nothing,
    AddUnsignedHeader,
    ChangeUnsignedHeader,
    ChangeSignedValue,
    AddSignedValue,
    DropSignedValue,
    ChangeHost,
    ChangePath,
    AddQuery,
    ChangeMethod,
    ChangeBody,
    FlipSignature,
    ShiftDate,
    ChangeRegion,
    UnlistHeader,
}

impl OnTheWay {
    fn keeps_the_signature(self) -> bool {
        matches!(
            self,
            OnTheWay::Nothing | OnTheWay::AddUnsignedHeader | OnTheWay::ChangeUnsignedHeader
        )
    }
}

#[derive(Debug, Clone)]
struct Signed {
    method: String,
    path: String,
    query: Vec<(String, String)>,
    extra: Vec<(String, String)>,
    body: Vec<u8>,
    change: OnTheWay,
}

fn signed_request() -> impl Strategy<Value = Signed> {
    use OnTheWay::*;
    (
        pick(&["GET", "POST", "PUT", "DELETE"]),
        prop::collection::vec("[A-Za-z0-9_~-]{1,10}", 0..4)
            .prop_map(|s| format!("/{}", s.join("/"))),
        prop::collection::vec(("[a-z]{1,5}", "[A-Za-z0-9]{0,6}"), 0..3),
        prop::collection::vec(("x-[a-z]{1,8}", "[ -~]{0,20}"), 0..4),
        prop::collection::vec(any::<u8>(), 0..64),
        prop::sample::select(vec![
            Nothing,
            AddUnsignedHeader,
            ChangeUnsignedHeader,
            ChangeSignedValue,
            AddSignedValue,
            DropSignedValue,
            ChangeHost,
            ChangePath,
            AddQuery,
            ChangeMethod,
            ChangeBody,
            FlipSignature,
            ShiftDate,
            ChangeRegion,
            UnlistHeader,
        ]),
    )
        .prop_map(|(method, path, query, extra, body, change)| Signed {
            method,
            path,
            query,
            extra,
            body,
            change,
        })
}

proptest! {
    #![proptest_config(config(ARBITRARY_CASES))]

    /// Any header set, Authorization string and body gets an answer — never a panic — and
    /// nothing but a correctly signed request gets through.
    #[test]
    fn arbitrary_headers_get_an_answer_and_never_pass(request in arbitrary_request()) {
        let headers = header_map(&request.headers);
        let now = SystemTime::now();
        prop_assert!(verify(&keys(), &request.method, &request.uri, &headers, &request.body, now).is_err());
        let (status, text) = runtime().block_on(answer(&request.method, &request.uri, headers, Body::from(request.body.clone())));
        prop_assert!(
            [StatusCode::FORBIDDEN, StatusCode::PAYLOAD_TOO_LARGE, StatusCode::BAD_REQUEST].contains(&status),
            "{status}: {text}"
        );
        // A HEAD answer has no body (axum drops it).
        if request.method != "HEAD" {
            let value: serde_json::Value = serde_json::from_str(&text).unwrap();
            prop_assert_eq!(&value["success"], &serde_json::Value::Bool(false));
            prop_assert!(value["error"].as_str().is_some_and(|e| !e.is_empty()));
            prop_assert!(!text.contains(SECRET));
        }
    }
}

proptest! {
    #![proptest_config(config(SIGNED_CASES))]

    /// A correctly signed request passes, and stays passing only under changes the
    /// signature does not cover (unsigned headers); every other change is refused.
    #[test]
    fn only_an_unchanged_signed_request_passes(case in signed_request()) {
        let now = SystemTime::now();
        let query: Vec<String> = case.query.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let mut uri = case.path.clone();
        if !query.is_empty() {
            uri = format!("{uri}?{}", query.join("&"));
        }
        let extra: Vec<(&str, &str)> = case.extra.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let mut headers = sign_with(&case.method, &uri, &extra, &case.body, SECRET, now);
        // Sent along but not signed (generated names have one hyphen only).
        headers.insert("x-not-signed", HeaderValue::from_static("original"));
        let (mut method, mut body) = (case.method.clone(), case.body.clone());
        let signed_names: Vec<&str> = extra.iter().map(|(k, _)| *k).collect();
        match case.change {
            OnTheWay::Nothing => {}
            OnTheWay::AddUnsignedHeader => { headers.append("x-not-signed", HeaderValue::from_static("another")); }
            OnTheWay::ChangeUnsignedHeader => { headers.insert("x-not-signed", HeaderValue::from_static("changed")); }
            OnTheWay::ChangeSignedValue => {
                let name = signed_names.first().copied().unwrap_or("host");
                let first = headers[name].to_str().unwrap().to_string();
                let mut values: Vec<String> = headers.get_all(name).iter().skip(1).map(|v| v.to_str().unwrap().to_string()).collect();
                values.insert(0, format!("{first}x"));
                headers.remove(name);
                for value in values {
                    headers.append(http::HeaderName::from_bytes(name.as_bytes()).unwrap(), value.parse().unwrap());
                }
            }
            OnTheWay::AddSignedValue => {
                let name = signed_names.first().copied().unwrap_or("host");
                headers.append(http::HeaderName::from_bytes(name.as_bytes()).unwrap(), HeaderValue::from_static("extra"));
            }
            OnTheWay::DropSignedValue => {
                let name = signed_names.first().copied().unwrap_or("host");
                let mut values: Vec<HeaderValue> = headers.get_all(name).iter().cloned().collect();
                values.pop();
                headers.remove(name);
                for value in values {
                    headers.append(http::HeaderName::from_bytes(name.as_bytes()).unwrap(), value);
                }
            }
            OnTheWay::ChangeHost => { headers.insert("host", HeaderValue::from_static("127.0.0.1:3001")); }
            OnTheWay::ChangePath => { uri = uri.replacen(&case.path, &format!("{}x", case.path), 1); }
            OnTheWay::AddQuery => { uri = if uri.contains('?') { format!("{uri}&zz=1") } else { format!("{uri}?zz=1") }; }
            OnTheWay::ChangeMethod => { method = if method == "POST" { "GET".into() } else { "POST".into() }; }
            OnTheWay::ChangeBody => { body.push(b'!'); }
            OnTheWay::FlipSignature => {
                let value = authorization_of(&headers);
                let last = value.chars().last().unwrap();
                let flipped = if last == '0' { '1' } else { '0' };
                set_authorization(&mut headers, &format!("{}{flipped}", &value[..value.len() - 1]));
            }
            OnTheWay::ShiftDate => {
                let date = amz_date(now + Duration::from_secs(1));
                let date = if headers["x-amz-date"].to_str().unwrap() == date { amz_date(now - Duration::from_secs(1)) } else { date };
                headers.insert("x-amz-date", date.parse().unwrap());
            }
            OnTheWay::ChangeRegion => replace_in_authorization(&mut headers, "/us-east-1/", "/us-west-2/"),
            OnTheWay::UnlistHeader => {
                let value = authorization_of(&headers);
                let start = value.find("SignedHeaders=").unwrap() + "SignedHeaders=".len();
                let end = start + value[start..].find(',').unwrap();
                let list: Vec<&str> = value[start..end].split(';').collect();
                // Drop a listed header other than the required ones when there is one.
                let drop = list.iter().position(|n| !REQUIRED_SIGNED_HEADERS.contains(n)).unwrap_or(0);
                let kept: Vec<&str> = list.iter().enumerate().filter(|(i, _)| *i != drop).map(|(_, n)| *n).collect();
                set_signed_headers(&mut headers, &kept.join(";"));
            }
        }
        let result = verify(&keys(), &method, &uri, &headers, &body, now);
        if case.change.keeps_the_signature() {
            prop_assert_eq!(result, Ok(()));
        } else {
            prop_assert!(result.is_err(), "{:?} passed", case.change);
        }
        let (status, answered) = runtime().block_on(answer_bytes(&method, &uri, headers, Body::from(body.clone())));
        if case.change.keeps_the_signature() {
            prop_assert_eq!(status, StatusCode::OK);
            prop_assert_eq!(&answered[..], &body[..]);
        } else {
            prop_assert_eq!(status, StatusCode::FORBIDDEN);
        }
    }
}
