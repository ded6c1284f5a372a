//! The proxy on the wire, against a fake upstream that echoes what it received: bytes pass
//! untouched, error shapes per protocol, resets are resets, odd input breaks nothing.

use std::convert::Infallible;
use std::io::ErrorKind;
use std::net::SocketAddr;
use std::time::Duration;

use http::{Request, Response};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::Value;
use sqs_push_fault_proxy::{Fault, FaultKind, FaultProxy, Rule, Withhold};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// An upstream that answers 200 with the request body as its body, and the request's host,
/// method, path and content length in `x-echo-*` headers.
async fn echo_upstream() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            tokio::spawn(async move {
                let service = service_fn(|request: Request<Incoming>| async move {
                    let (parts, body) = request.into_parts();
                    let body = body
                        .collect()
                        .await
                        .map(http_body_util::Collected::to_bytes)
                        .unwrap_or_default();
                    let header = |name: &str| {
                        parts
                            .headers
                            .get(name)
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or("-")
                            .to_string()
                    };
                    let response = Response::builder()
                        .header("x-echo-host", header("host"))
                        .header("x-echo-length", header("content-length"))
                        .header("x-echo-method", parts.method.as_str())
                        .header("x-echo-path", parts.uri.to_string())
                        .header("x-amz-crc32", "12345")
                        .body(Full::new(body))
                        .unwrap();
                    Ok::<_, Infallible>(response)
                });
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    address
}

async fn proxy_to_echo() -> FaultProxy {
    let upstream = echo_upstream().await;
    FaultProxy::start(&format!("http://{upstream}"))
        .await
        .unwrap()
}

/// One parsed HTTP response.
#[derive(Debug)]
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("a JSON body")
    }
}

/// Parses the responses in `raw`, each framed by Content-Length.
fn parse(mut raw: &[u8]) -> Vec<Answer> {
    let mut answers = Vec::new();
    while !raw.is_empty() {
        let end = raw
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .expect("a header block");
        let head = std::str::from_utf8(&raw[..end]).unwrap();
        let mut lines = head.split("\r\n");
        let status = lines
            .next()
            .unwrap()
            .split(' ')
            .nth(1)
            .unwrap()
            .parse()
            .unwrap();
        let headers: Vec<(String, String)> = lines
            .map(|line| {
                let (name, value) = line.split_once(':').unwrap();
                (name.trim().to_string(), value.trim().to_string())
            })
            .collect();
        let length: usize = headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
            .map(|(_, v)| v.parse().unwrap())
            .expect("Content-Length framing");
        let body = raw[end + 4..end + 4 + length].to_vec();
        raw = &raw[end + 4 + length..];
        answers.push(Answer {
            status,
            headers,
            body,
        });
    }
    answers
}

fn request(target: Option<&str>, path: &str, body: &[u8], close: bool) -> Vec<u8> {
    let mut raw = format!("POST {path} HTTP/1.1\r\nHost: sqs.example.test:1234\r\n");
    if let Some(target) = target {
        raw.push_str(&format!(
            "X-Amz-Target: {target}\r\nContent-Type: application/x-amz-json-1.0\r\n"
        ));
    }
    if close {
        raw.push_str("Connection: close\r\n");
    }
    raw.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    let mut raw = raw.into_bytes();
    raw.extend_from_slice(body);
    raw
}

/// Writes `raw` to the proxy and reads until it closes the connection.
async fn exchange(proxy: &FaultProxy, raw: &[u8]) -> std::io::Result<Vec<u8>> {
    exchange_with(proxy, raw, false).await
}

/// Like `exchange`; with `hang_up`, the client closes its sending side after `raw`.
async fn exchange_with(proxy: &FaultProxy, raw: &[u8], hang_up: bool) -> std::io::Result<Vec<u8>> {
    let mut stream = TcpStream::connect(proxy.local_addr()).await?;
    stream.write_all(raw).await?;
    if hang_up {
        stream.shutdown().await?;
    }
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut out))
        .await
        .expect("the proxy answers or closes")?;
    Ok(out)
}

#[tokio::test]
async fn bodies_and_headers_pass_byte_for_byte_on_a_kept_alive_connection() {
    let proxy = proxy_to_echo().await;
    let body: Vec<u8> = (0..=255u8).cycle().take(70_000).collect();
    let mut raw = request(Some("AmazonSQS.SendMessage"), "/q?x=%20y", &body, false);
    raw.extend(request(Some("AmazonSQS.SendMessage"), "/", b"second", true));
    let answers = parse(&exchange(&proxy, &raw).await.unwrap());
    assert_eq!(answers.len(), 2, "two answers on one connection");
    assert_eq!(answers[0].status, 200);
    assert_eq!(answers[0].body, body);
    assert_eq!(
        answers[0].header("x-echo-host"),
        Some("sqs.example.test:1234")
    );
    assert_eq!(answers[0].header("x-echo-path"), Some("/q?x=%20y"));
    assert_eq!(answers[0].header("x-echo-length"), Some("70000"));
    assert_eq!(answers[0].header("x-amz-crc32"), Some("12345"));
    assert_eq!(answers[1].body, b"second");
    let stats = proxy.stats().operation("SendMessage");
    assert_eq!((stats.seen, stats.forwarded), (2, 2));
}

#[tokio::test]
async fn error_shapes_per_protocol() {
    let proxy = proxy_to_echo().await;
    proxy.set_rules(vec![
        Rule::new("GetCallerIdentity", Fault::ServerError, 1.0),
        Rule::new("AssumeRoleWithWebIdentity", Fault::Throttling, 1.0),
        Rule::new("SendMessage", Fault::Throttling, 1.0).service("sqs"),
        Rule::new("Invoke", Fault::Throttling, 1.0),
        Rule::new("GetRecords", Fault::ServerError, 1.0),
    ]);
    let query = |action: &str| {
        request(
            None,
            "/",
            format!("Action={action}&Version=2011-06-15").as_bytes(),
            true,
        )
    };
    let answer = &parse(&exchange(&proxy, &query("GetCallerIdentity")).await.unwrap())[0];
    assert_eq!(answer.status, 500);
    assert_eq!(answer.header("content-type"), Some("text/xml"));
    let text = String::from_utf8_lossy(&answer.body);
    assert!(
        text.contains("<Error><Type>Receiver</Type><Code>InternalError</Code>"),
        "{text}"
    );
    let answer = &parse(
        &exchange(&proxy, &query("AssumeRoleWithWebIdentity"))
            .await
            .unwrap(),
    )[0];
    assert_eq!(answer.status, 400);
    assert!(
        String::from_utf8_lossy(&answer.body)
            .contains("<Type>Sender</Type><Code>Throttling</Code>")
    );

    let json = request(Some("AmazonSQS.SendMessage"), "/", b"{}", true);
    let answer = &parse(&exchange(&proxy, &json).await.unwrap())[0];
    assert_eq!(answer.status, 400);
    assert_eq!(
        answer.header("x-amzn-query-error"),
        Some("RequestThrottled;Sender")
    );
    assert_eq!(
        answer.json()["__type"],
        "com.amazonaws.sqs#RequestThrottled"
    );

    let stream = request(Some("Kinesis_20131202.GetRecords"), "/", b"{}", true);
    let answer = &parse(&exchange(&proxy, &stream).await.unwrap())[0];
    assert_eq!(answer.status, 500);
    assert_eq!(answer.header("x-amzn-errortype"), Some("InternalFailure"));
    assert_eq!(
        answer.json()["__type"],
        "com.amazon.coral.service#InternalFailure"
    );

    let invoke = request(None, "/2015-03-31/functions/f/invocations", b"{}", true);
    let answer = &parse(&exchange(&proxy, &invoke).await.unwrap())[0];
    assert_eq!(answer.status, 429);
    assert_eq!(
        answer.header("x-amzn-errortype"),
        Some("TooManyRequestsException")
    );

    let stats = proxy.stats();
    assert_eq!(stats.total().forwarded, 0);
    assert_eq!(stats.total().faults_of(FaultKind::Throttling), 3);
    assert_eq!(stats.total().faults_of(FaultKind::ServerError), 2);
    let names: Vec<String> = stats.operations.keys().map(ToString::to_string).collect();
    assert_eq!(
        names,
        [
            "kinesis:GetRecords",
            "lambda:Invoke",
            "sqs:SendMessage",
            "sts:AssumeRoleWithWebIdentity",
            "sts:GetCallerIdentity",
        ]
    );
}

#[tokio::test]
async fn a_connection_reset_is_an_rst_without_an_answer() {
    let proxy = proxy_to_echo().await;
    proxy.set_rules(vec![Rule::new("SendMessage", Fault::ConnectionReset, 1.0)]);
    let raw = request(Some("AmazonSQS.SendMessage"), "/", b"{}", false);
    let err = exchange(&proxy, &raw).await.expect_err("no answer");
    assert_eq!(err.kind(), ErrorKind::ConnectionReset, "{err}");
    assert_eq!(
        proxy
            .stats()
            .operation("SendMessage")
            .faults_of(FaultKind::ConnectionReset),
        1
    );
}

#[tokio::test]
async fn the_forwarded_part_of_a_batch_holds_only_the_kept_entries() {
    let proxy = proxy_to_echo().await;
    proxy.set_rules(vec![Rule::new(
        "SendMessageBatch",
        Fault::FailedEntries(Withhold::AllButFirst(1)),
        1.0,
    )]);
    let body = br#"{"QueueUrl":"q","Entries":[{"Id":"a","MessageBody":"1"},{"Id":"b","MessageBody":"2"}]}"#;
    let raw = request(Some("AmazonSQS.SendMessageBatch"), "/", body, true);
    let answer = &parse(&exchange(&proxy, &raw).await.unwrap())[0];
    assert_eq!(answer.status, 200);
    assert_eq!(
        answer.header("x-amz-crc32"),
        None,
        "a stale checksum is dropped"
    );
    // The echo upstream answers with what it was sent, plus the proxy's Failed entries.
    let echoed = answer.json();
    assert_eq!(echoed["Entries"].as_array().unwrap().len(), 1);
    assert_eq!(echoed["Entries"][0]["Id"], "a");
    assert_eq!(echoed["Failed"][0]["Id"], "b");
    assert_eq!(echoed["Failed"][0]["SenderFault"], false);
    assert_eq!(
        answer.header("x-echo-length"),
        Some(
            serde_json::to_vec(
                &serde_json::json!({"QueueUrl":"q","Entries":[{"Id":"a","MessageBody":"1"}]})
            )
            .unwrap()
            .len()
            .to_string()
            .as_str()
        )
    );
}

#[tokio::test]
async fn odd_input_breaks_nothing() {
    let proxy = proxy_to_echo().await;
    proxy.set_rules(vec![
        Rule::new(
            "SendMessageBatch",
            Fault::FailedEntries(Withhold::Each(1.0)),
            1.0,
        ),
        Rule::new(
            "BatchWriteItem",
            Fault::UnprocessedItems(Withhold::Each(1.0)),
            1.0,
        ),
        Rule::new(
            "DeleteIdentities",
            Fault::UnprocessedIdentityIds(Withhold::Each(1.0)),
            1.0,
        ),
    ]);
    // Not HTTP at all: the proxy may answer 400 or just close; it must not go away.
    let _ = exchange(&proxy, b"\x00\xff GARBAGE\r\n\r\n").await;
    let truncated = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nshort";
    let _ = exchange_with(&proxy, truncated, true).await;
    // Batches that are not what they claim are forwarded untouched.
    for (target, body) in [
        ("AmazonSQS.SendMessageBatch", &b"not json"[..]),
        ("AmazonSQS.SendMessageBatch", br#"{"Entries":[{"NoId":1}]}"#),
        (
            "DynamoDB_20120810.BatchWriteItem",
            br#"{"RequestItems":[]}"#,
        ),
        (
            "AWSCognitoIdentityService.DeleteIdentities",
            br#"{"IdentityIdsToDelete":[1]}"#,
        ),
        ("DynamoDB_20120810.BatchWriteItem", b"\xff\xfe\x00"),
    ] {
        let raw = request(Some(target), "/", body, true);
        let answer = &parse(&exchange(&proxy, &raw).await.unwrap())[0];
        assert_eq!(answer.status, 200, "{target}");
        assert_eq!(answer.body, body, "{target}");
    }
    // An upstream that is gone is a 502, not a crash.
    let port = sqs_push_tests::free_port();
    let dead = FaultProxy::start(&format!("http://127.0.0.1:{port}"))
        .await
        .unwrap();
    let raw = request(Some("AmazonSQS.SendMessage"), "/", b"{}", true);
    let answer = &parse(&exchange(&dead, &raw).await.unwrap())[0];
    assert_eq!(answer.status, 502);
    // Bad upstream URLs are refused up front.
    for bad in ["https://127.0.0.1:1", "not a url", "/just/a/path"] {
        assert!(FaultProxy::start(bad).await.is_err(), "{bad}");
    }
    // And the proxy still serves.
    let raw = request(Some("AmazonSQS.SendMessage"), "/", b"ok", true);
    assert_eq!(parse(&exchange(&proxy, &raw).await.unwrap())[0].body, b"ok");
    assert_eq!(proxy.stats().total().total_faults(), 0);
}
